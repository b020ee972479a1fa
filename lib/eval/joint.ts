/**
 * Joint decoding of baldness (multitask runs): the hair-colour head's "bald" class and the hair-type head's
 * "bald" class describe the same thing (in Tiny Portraits' labels 95 of the 96 bald-coloured faces are also
 * bald-typed; the bald type also holds gray-haired bald men), and the hair-type head is the better judge of it
 * (on tp_real's test split: bald F1 0.92–0.97 as a type, 0.65–0.71 as a colour). "bald" combines them as a product
 * of experts: the colour probabilities times the type head's P(bald) for the colour "bald" and 1 − P(bald) for
 * every other colour, renormalised:
 *
 *   p'(c) ∝ p_colour(c) · (c = bald ? p_type(bald) : 1 − p_type(bald))
 *
 * Evaluation and prediction apply it before the decision biases, which are fitted on the joint probabilities
 * (decision_bias.json records it). The hair-type head's own probabilities are left as they are.
 */
import { UserError } from "../util/errors.ts";

export const JOINTS = ["bald", "none"] as const;
/** "bald": colour × type baldness (see above); "none": each head alone. */
export type Joint = typeof JOINTS[number];
export const JOINT_MODES = ["auto", ...JOINTS] as const;
/** "auto": as the run's decision biases were fitted, else as its recipe says (config.json `joint`). */
export type JointMode = typeof JOINT_MODES[number];

/** Heads the joint decoding needs (and the label both must have). */
const COLOUR = "hair_color", TYPE = "hair_type", BALD = "bald";

/** Throws a one-line UserError unless the heads include a hair colour and a hair type head with a "bald" class. */
export function checkJointHeads(heads: Record<string, readonly string[]>, where: string): void {
  if (!heads[COLOUR]?.includes(BALD) || !heads[TYPE]?.includes(BALD)) {
    throw new UserError(`${where}: joint decoding 'bald' needs the hair_color and hair_type heads (a multitask run); this run has ${Object.keys(heads).join(", ")}; use --joint none`);
  }
}

/** The hair-colour probabilities after the joint decoding (new array; rows of `colour` and `type` must match). */
export function jointBald(colour: Float32Array, colourLabels: readonly string[], type: Float32Array, typeLabels: readonly string[]): Float32Array {
  const kc = colourLabels.length, kt = typeLabels.length;
  const bc = colourLabels.indexOf(BALD), bt = typeLabels.indexOf(BALD);
  if (bc < 0 || bt < 0) throw new Error(`jointBald: both heads need a '${BALD}' class (colour: ${colourLabels.join(",")}; type: ${typeLabels.join(",")})`);
  const n = colour.length / kc;
  if (!Number.isInteger(n) || type.length !== n * kt) throw new Error(`jointBald: ${colour.length} colour and ${type.length} type probabilities are not the same rows of ${kc} and ${kt} classes`);
  const out = new Float32Array(colour.length);
  for (let i = 0; i < n; i++) {
    const pb = Math.min(Math.max(type[i * kt + bt], 1e-7), 1 - 1e-7);
    let z = 0;
    for (let c = 0; c < kc; c++) z += (out[i * kc + c] = colour[i * kc + c] * (c === bc ? pb : 1 - pb));
    for (let c = 0; c < kc; c++) out[i * kc + c] /= z;
  }
  return out;
}
