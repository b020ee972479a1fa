/**
 * Executes every notebook headless on the Deno Jupyter kernel (Debian's
 * Jupyter + nbconvert, kernel from `deno jupyter --install`) on a small
 * procedural set; a failing cell fails the test.
 */
import "../_cache_env.ts";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { ensureProceduralDataset } from "../../lib/data/synthetic/mod.ts";

const NOTEBOOKS = resolve(import.meta.dirname!, "../../notebooks");
/** Debian's Jupyter lives in the system Python (a pyenv python3 may shadow it on PATH). */
const PYTHONS = ["/usr/bin/python3", "python3"];

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

async function findPython(): Promise<string> {
  for (const py of PYTHONS) {
    try {
      if ((await run(py, ["-c", "import nbconvert, nbclient"])).code === 0) return py;
    } catch { /* not there */ }
  }
  throw new Error("notebook tests need Jupyter: apt-get install jupyter-notebook python3-nbconvert (see README)");
}

async function ensureKernel(): Promise<void> {
  const home = Deno.env.get("HOME") ?? "/root";
  try {
    await Deno.stat(join(home, ".local/share/jupyter/kernels/deno/kernel.json"));
  } catch {
    const r = await run(Deno.execPath(), ["jupyter", "--install"]);
    assert.equal(r.code, 0, r.text);
  }
}

const names = [...Deno.readDirSync(NOTEBOOKS)].map((e) => e.name).filter((n) => n.endsWith(".ipynb")).sort();

if (Deno.env.get("TP_SKIP_NOTEBOOKS") === "1") {
  Deno.test({ name: "notebooks (skipped: TP_SKIP_NOTEBOOKS=1)", ignore: true, fn() {} });
} else {
  const outDir = await Deno.makeTempDir({ prefix: "tp_nb_" });
  const dataDir = join(outDir, "data");
  let dataroot = "";
  Deno.test("a small procedural set for the notebooks is generated", async () => {
    dataroot = await ensureProceduralDataset({ count: 400, seed: 3, dataDir, quiet: true });
    await ensureKernel();
  });
  for (const name of names) {
    Deno.test(`notebook ${name} runs headless without a failing cell`, async () => {
      const py = await findPython();
      const executed = join(outDir, name);
      const r = await run(py, [
        "-m", "nbconvert", "--to", "notebook", "--execute", join(NOTEBOOKS, name), "--output", executed,
        "--ExecutePreprocessor.timeout=600",
      ], {
        TP_DATAROOT: dataroot, TP_OUT: join(outDir, "reports"), TP_SPLIT_DIR: join(outDir, "splits"), TP_COUNT: "400",
        TP_CHECKPOINTS: join(outDir, "checkpoints"), TP_PRESET: "debug",
      });
      assert.equal(r.code, 0, `nbconvert failed for ${name}:\n${r.text.slice(-4000)}`);
      const nb = JSON.parse(await Deno.readTextFile(executed));
      const errors = nb.cells.flatMap((c: { outputs?: { output_type: string; ename?: string; evalue?: string }[] }) =>
        (c.outputs ?? []).filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`)
      );
      assert.deepEqual(errors, []);
      const shown = nb.cells.flatMap((c: { outputs?: { data?: Record<string, unknown> }[] }) => (c.outputs ?? []).flatMap((o) => Object.keys(o.data ?? {})));
      assert.ok(shown.some((k: string) => k === "text/html" || k === "image/png" || k.startsWith("application/vnd.vegalite")), `${name} displayed no table, image or chart`);
    });
  }
  Deno.test("notebook outputs are cleaned up", async () => {
    await Deno.remove(outDir, { recursive: true });
  });
}
