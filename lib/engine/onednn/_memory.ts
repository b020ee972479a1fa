// Private: recycling of the Float32Arrays the onednn kernels allocate for their outputs.
//
// A fresh 18 MB Float32Array costs ~10 ms in page faults and zeroing, more than the kernel that fills it, and a
// training step allocates dozens. So outputs come from a free list, and arrays go back to it when tfjs disposes
// their tensor, unless they may still be referenced elsewhere ("escaped"): handed out by readSync/read
// (dataSync(), data(), array()), or given to a cpu kernel, which might keep a view of it (Slice returns
// subarrays). Only arrays allocated here are recycled, and every kernel that uses `alloc` overwrites all of its
// output, so stale contents are never visible.
import { env } from "./_env.ts";

const owned = new WeakSet<Float32Array>();
const escaped = new WeakSet<Float32Array>();
const inFree = new WeakSet<Float32Array>();
const free_ = new Map<number, Float32Array<ArrayBuffer>[]>();
/** The free arrays, oldest first: when the pool is full, the oldest go (sizes no longer used, e.g. another batch's). */
const freeOrder = new Set<Float32Array<ArrayBuffer>>();
let freeBytes = 0;
const MAX_FREE_BYTES = (Number(env("ONEDNN_POOL_MB")) || 1024) * 2 ** 20;
/** Arrays below this size are cheap to allocate; not worth tracking. */
const MIN_POOLED = 4096;

const stats = { allocs: 0, reused: 0 };

/** A Float32Array of `n` elements with unspecified contents (the caller must overwrite every element). */
export function alloc(n: number): Float32Array<ArrayBuffer> {
  stats.allocs++;
  if (n < MIN_POOLED) return new Float32Array(n);
  const list = free_.get(n);
  if (list !== undefined && list.length > 0) {
    const a = list.pop()!;
    inFree.delete(a);
    freeOrder.delete(a);
    freeBytes -= a.byteLength;
    stats.reused++;
    return a;
  }
  const a = new Float32Array(n);
  owned.add(a);
  return a;
}

/** Marks an array as possibly referenced outside tfjs's bookkeeping: it will never be recycled. */
export function escape(values: unknown): void {
  if (values instanceof Float32Array) escaped.add(values);
}

/**
 * True when data derived from `values` (a reordered copy) may be cached until `release(values)`: tfjs treats
 * tensor data as immutable, and the only arrays whose contents we change are pool arrays, after release.
 * Escaped arrays are excluded (user code holding them could write into them).
 */
export function isCacheable(values: ArrayBufferView): boolean {
  return values instanceof Float32Array && !escaped.has(values) && !inFree.has(values);
}

const releaseListeners: ((values: Float32Array) => void)[] = [];

/** Registers a callback run when a tensor's array is released (to drop data derived from it). */
export function onRelease(fn: (values: Float32Array) => void): void {
  releaseListeners.push(fn);
}

/** Called when the tensor data holding `values` is released. */
export function release(values: unknown): void {
  if (!(values instanceof Float32Array) || inFree.has(values)) return;
  for (const fn of releaseListeners) fn(values);
  free(values as Float32Array<ArrayBuffer>);
}

/** Returns an array from `alloc` to the pool (unless escaped); for internal arrays never handed to tfjs. */
export function free(values: Float32Array<ArrayBuffer>): void {
  if (!owned.has(values) || inFree.has(values) || escaped.has(values)) return;
  if (values.byteLength > MAX_FREE_BYTES) return;
  // Full: drop the arrays freed longest ago. (Refusing the new one instead let a pool filled by one batch size
  // refuse every array of the next: a face_resnet step at batch 32 after one at batch 64 ran 25 % slower.)
  while (freeBytes + values.byteLength > MAX_FREE_BYTES) evictOldest();
  let list = free_.get(values.length);
  if (list === undefined) free_.set(values.length, list = []);
  list.push(values);
  inFree.add(values);
  freeOrder.add(values);
  freeBytes += values.byteLength;
}

function evictOldest(): void {
  const [old] = freeOrder;
  freeOrder.delete(old);
  inFree.delete(old);
  freeBytes -= old.byteLength;
  const list = free_.get(old.length)!;
  // a size's arrays are pushed and popped at the end: its oldest is the first
  list.splice(list[0] === old ? 0 : list.indexOf(old), 1);
  if (list.length === 0) free_.delete(old.length);
}

export function poolStats(): { allocs: number; reused: number; freeBytes: number } {
  return { ...stats, freeBytes };
}
