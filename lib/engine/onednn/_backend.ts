// Private: glue between tfjs kernels and the oneDNN plans (reading tfjs buffers, making outputs, fused
// activations as oneDNN post-ops).
import type { backend_util, DataId, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { escape, release } from "./_memory.ts";
import { ALG_ELTWISE_CLIP_V2, ALG_ELTWISE_ELU, ALG_ELTWISE_LOGISTIC, ALG_ELTWISE_RELU, type PostOp } from "./_ffi.ts";

export type Backend = MathBackendCPU;

/** What tfjs passes to a kernel function. */
export interface KernelArgs {
  /** Named inputs; optional ones (bias, preluActivationWeights) may be absent at run time. */
  inputs: Record<string, TensorInfo>;
  backend: Backend;
  attrs?: NamedAttrMap;
}

/** An overriding kernel: returns null when it does not handle the case (the cpu kernel then runs). */
export type Override = (args: KernelArgs) => TensorInfo | TensorInfo[] | null;

/**
 * The "onednn" backend object: the cpu backend, plus recycling of kernel output arrays (see _memory.ts):
 * arrays handed out by readSync/read are marked escaped, arrays of released tensors go back to the pool.
 */
export class OnednnBackend extends MathBackendCPU {
  constructor() {
    super();
    // Skip the cpu backend's one-time "install tfjs-node" banner: this backend is the fast path.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    const v = super.readSync(dataId);
    escape(v);
    return v;
  }

  override async read(dataId: DataId): Promise<backend_util.BackendValues> {
    const v = await super.read(dataId);
    escape(v);
    return v;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const d = this.data.get(dataId);
    const lazy = LAZY.get(d);
    if (lazy !== undefined) {
      // Never computed: drop it and let go of its inputs.
      d.refCount--;
      if (!force && d.refCount > 0) return false;
      LAZY.delete(d);
      this.data.delete(dataId);
      for (const h of lazy.holds) this.disposeData(h);
      return true;
    }
    const values = d.values;
    const freed = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) release(values);
    return freed;
  }

  /**
   * A float32 output computed only when its values are first read (by any kernel, dataSync, a move to another
   * backend); if the tensor is disposed unread, never computed. `holds` are kept alive (backend reference counts)
   * until then. Used for convolution input gradients, which tfjs computes for every conv layer, although nothing
   * reads the one of the first layer (the gradient of the input batch).
   */
  makeLazyOutput(shape: number[], holds: TensorInfo[], compute: () => Float32Array): TensorInfo {
    lazyStats.created++;
    const info = this.makeTensorInfo(shape, "float32", new Float32Array(0));
    const d = this.data.get(info.dataId);
    for (const h of holds) this.incRef(h.dataId);
    LAZY.set(d, { compute, holds: holds.map((h) => h.dataId) });
    Object.defineProperty(d, "values", {
      configurable: true,
      enumerable: true,
      get: () => this.materialize(d),
      set: (v) => setValues(d, v),
    });
    return info;
  }

  private materialize(d: object): Float32Array {
    const lazy = LAZY.get(d)!;
    lazyStats.computed++;
    const v = lazy.compute();
    LAZY.delete(d);
    setValues(d, v);
    for (const h of lazy.holds) this.disposeData(h);
    return v;
  }
}

/** Lazy outputs made / actually computed (for tests). */
export const lazyStats = { created: 0, computed: 0 };

const LAZY = new WeakMap<object, { compute: () => Float32Array; holds: DataId[] }>();

function setValues(d: object, v: unknown): void {
  Object.defineProperty(d, "values", { value: v, writable: true, configurable: true, enumerable: true });
}

/** Marks the inputs' arrays as escaped (before handing them to a cpu kernel that might keep views). */
export function escapeInputs(backend: Backend, inputs: Record<string, TensorInfo | null | undefined>): void {
  for (const k in inputs) {
    const t = inputs[k];
    if (t != null && backend.data.has(t.dataId)) escape(backend.data.get(t.dataId).values);
  }
}
/** The Float32Array behind a float32 tensor, or null (other dtypes, complex tensors). */
export function f32(backend: Backend, t: TensorInfo | undefined | null): Float32Array<ArrayBuffer> | null {
  if (t == null || t.dtype !== "float32") return null;
  const v = backend.data.get(t.dataId)?.values;
  return v instanceof Float32Array ? v as Float32Array<ArrayBuffer> : null;
}

export function output(backend: Backend, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, "float32", values);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A tfjs fused activation as a oneDNN eltwise post-op list; null when oneDNN cannot express it (prelu).
 * "linear" gives an empty list.
 */
export function fusedPostOps(activation: string | undefined, leakyreluAlpha: number | undefined): PostOp[] | null {
  switch (activation ?? "linear") {
    case "linear":
      return [];
    case "relu":
      return [{ alg: ALG_ELTWISE_RELU, alpha: 0, beta: 0 }];
    case "leakyrelu":
      return [{ alg: ALG_ELTWISE_RELU, alpha: leakyreluAlpha ?? 0.2, beta: 0 }];
    case "relu6":
      return [{ alg: ALG_ELTWISE_CLIP_V2, alpha: 0, beta: 6 }];
    case "elu":
      return [{ alg: ALG_ELTWISE_ELU, alpha: 1, beta: 0 }];
    case "sigmoid":
      return [{ alg: ALG_ELTWISE_LOGISTIC, alpha: 0, beta: 0 }];
    default:
      return null;
  }
}

/** A plan-cache key part for a post-op chain (a binary post-op's operand layout is for the caller's key). */
export function postKey(post: PostOp[]): string {
  return post.map((p) => `${p.alg}:${p.alpha}:${p.beta}${p.src1 ? ":binary" : ""}`).join(",");
}
