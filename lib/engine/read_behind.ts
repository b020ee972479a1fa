/**
 * Reads a training step's small result tensor (losses, counts) one step late: `push` starts the read of this step's
 * tensor and hands the previous step's values to `use`, so the backend already has the next step queued while the
 * host waits (on webgpu a read before the next step is queued leaves the GPU idle between steps; on CPU backends the
 * values are there at once). `flush` hands over the last one. The pushed tensor is disposed once read.
 *
 *   const behind = new ReadBehind<number>((values, rows) => { lossSum += values[0] * rows; });
 *   for (...) { ...; behind.push(tf.stack([loss, hits]), rows.length) ... }   // await each push
 *   await behind.flush();
 */
import type * as tf from "@tensorflow/tfjs-core";

export class ReadBehind<M> {
  private pending: { read: Promise<tf.TypedArray>; meta: M } | null = null;

  constructor(private readonly use: (values: tf.TypedArray, meta: M) => void) {}

  /** Starts reading `t` (disposed when read) and hands over the previous push's values. */
  async push(t: tf.Tensor, meta: M): Promise<void> {
    const read = t.data().finally(() => t.dispose());
    read.catch(() => {}); // a failure is reported where the read is awaited
    await this.flush();
    this.pending = { read, meta };
  }

  /** Hands over the values of the last push, if any. */
  async flush(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    if (p) this.use(await p.read, p.meta);
  }
}
