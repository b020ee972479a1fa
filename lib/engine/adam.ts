/**
 * Adam whose update is one engine kernel per variable where the active backend has one: on onednn, OnednnAdam
 * (lib/engine/onednn/_adam.ts: 4 oneDNN passes with post-ops, on all threads, instead of tfjs' 12 element-wise
 * ops, each with an output of its own); elsewhere tfjs' AdamOptimizer itself. Same class name, configuration,
 * moments (names, order, getWeights / setWeights) and bias correction as tf.train.adam, so checkpoints of either
 * load in the other; the update agrees with tfjs' to float32 rounding (its constants are gathered differently).
 */
import * as tf from "@tensorflow/tfjs-core";
import { ADAM_UPDATE, type AdamAttrs } from "./onednn/mod.ts";

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

/** tf.AdamOptimizer's private state, which this subclass keeps exactly as tfjs does. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Slot[];
  accumulatedSecondMoment: Slot[];
}

type Gradients = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

let engineUpdate = true;
/** Off: every EngineAdam runs tfjs' own update (for A/B speed comparisons, bench/onednn_profile.ts --ab-adam). */
export function setEngineAdam(on: boolean): void {
  engineUpdate = on;
}

export class EngineAdam extends tf.AdamOptimizer {
  /** Sets the learning rate of the next steps (a schedule); the moments and step count stay. */
  setLearningRate(lr: number): void {
    if (!(lr >= 0)) throw new Error(`EngineAdam.setLearningRate: expected a non-negative rate, got ${lr}`);
    this.learningRate = lr;
  }

  override applyGradients(variableGradients: Gradients): void {
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const engine = tf.engine();
    const gradientOf = (name: string, i: number): tf.Tensor | undefined =>
      Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
    const fused = engineUpdate && tf.getKernel(ADAM_UPDATE, tf.getBackend()) !== undefined &&
      names.every((name, i) => {
        const value = engine.registeredVariables[name], g = gradientOf(name, i);
        return value?.dtype === "float32" && (g == null || (g.dtype === "float32" && g.size === value.size));
      });
    if (!fused) return super.applyGradients(variableGradients);
    const s = this as unknown as AdamState;
    // As tfjs computes them: 1 − β^t in float32 from the float32 running products.
    const c1 = Math.fround(1 - s.accBeta1.dataSync()[0]), c2 = Math.fround(1 - s.accBeta2.dataSync()[0]);
    const attrs: AdamAttrs = {
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      stepSize: this.learningRate / c1,
      invC2: 1 / c2,
    };
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = engine.registeredVariables[name];
        s.accumulatedFirstMoment[i] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        s.accumulatedSecondMoment[i] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        const g = gradientOf(name, i);
        if (g == null) return;
        const m = s.accumulatedFirstMoment[i].variable, v = s.accumulatedSecondMoment[i].variable;
        const inputs = { x: value, m, v, g } as unknown as tf.NamedTensorMap;
        const [x1, m1, v1] = engine.runKernel(ADAM_UPDATE, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m1);
        v.assign(v1);
        value.assign(x1);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, this.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }

  /**
   * tfjs' setWeights, then β1^(t+1) and β2^(t+1) as the running float32 products the steps themselves make (tfjs
   * recomputes them as powers, which differ in the last bits): a resumed run then updates exactly as the
   * uninterrupted one.
   */
  override async setWeights(weightValues: Parameters<tf.AdamOptimizer["setWeights"]>[0]): Promise<void> {
    await super.setWeights(weightValues);
    const s = this as unknown as AdamState;
    const t = (this as unknown as { iterations_: number }).iterations_;
    const product = (beta: number) => {
      const b = Math.fround(beta);
      let acc = b;
      for (let k = 0; k < t; k++) acc = Math.fround(acc * b);
      return acc;
    };
    tf.tidy(() => {
      s.accBeta1.assign(tf.scalar(product(this.beta1)));
      s.accBeta2.assign(tf.scalar(product(this.beta2)));
    });
  }
}

/** tf.train.adam's signature and defaults (epsilon: the backend's), as an EngineAdam. */
export function adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon?: number): EngineAdam {
  return new EngineAdam(learningRate, beta1, beta2, epsilon);
}
