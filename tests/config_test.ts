import "./_cache_env.ts";
import assert from "node:assert/strict";
import { parseFlags, UsageError } from "../lib/config.ts";

const SPEC = {
  epochs: { type: "int", positive: true, default: 3, help: "epochs" },
  lr: { type: "number", positive: true, help: "learning rate" },
  task: { type: "string", choices: ["gender", "haircolor"], default: "gender", help: "task" },
  resume: { type: "boolean", default: false, help: "resume" },
} as const;

Deno.test("parseFlags() applies defaults and converts types", () => {
  const f = parseFlags("train", ["--lr", "0.001", "--resume"], SPEC);
  assert.equal(f.epochs, 3);
  assert.equal(f.lr, 0.001);
  assert.equal(f.task, "gender");
  assert.equal(f.resume, true);
});

Deno.test("parseFlags() rejects wrong types, bad choices and unknown flags with a clear message", () => {
  assert.throws(() => parseFlags("train", ["--epochs", "x"], SPEC), (e: unknown) =>
    e instanceof UsageError && e.message === "train: expected --epochs to be a positive integer, got 'x'");
  assert.throws(() => parseFlags("train", ["--epochs", "0"], SPEC), /positive integer, got '0'/);
  assert.throws(() => parseFlags("train", ["--lr", "-1"], SPEC), /expected --lr to be a positive number, got '-1'/);
  assert.throws(() => parseFlags("train", ["--task", "age"], SPEC), /expected --task to be one of gender, haircolor, got 'age'/);
  assert.throws(() => parseFlags("train", ["--epoch", "3"], SPEC), /train: Unknown option '--epoch'/);
});

Deno.test("--loss-weights parses per-head weights and names a bad head or value", async () => {
  const { parseLossWeights } = await import("../lib/cli/train.ts");
  assert.deepEqual(parseLossWeights("gender=1,hair_type=0.25"), { gender: 1, hair_type: 0.25 });
  assert.throws(() => parseLossWeights("age=1"), /unknown head 'age'; expected gender, hair_color, hair_type/);
  assert.throws(() => parseLossWeights("gender=x"), /expected gender=<non-negative number>, got 'gender=x'/);
});
