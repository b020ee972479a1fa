/**
 * Synchronous reads on webgpu. tfjs-webgpu reads a GPU tensor synchronously (dataSync, arraySync, bufferSync) by
 * drawing its buffer onto OffscreenCanvases and reading one back through a "2d" context; Deno has OffscreenCanvas
 * but no 2d context, so such a read fails deep inside tfjs with "Cannot read properties of null (reading
 * 'clearRect')". Values still on the CPU (small tensors made from JS arrays) read fine. This wraps the backend's
 * readSync so that a failed read says what happened and what to call instead; successful reads are untouched.
 */

const WRAPPED = Symbol("tp.syncReadExplained");

interface ReadSyncBackend {
  readSync(dataId: object): unknown;
}

/** The message of a failed synchronous read on webgpu (tests match it). */
export const SYNC_READ_MESSAGE = "webgpu: a synchronous read of a GPU tensor (dataSync, arraySync, bufferSync) is not possible here; " +
  "read it with `await tensor.data()` (or `array()`) instead";

/** Makes `backend`'s failed synchronous reads say why and what to use instead. Idempotent. */
export function explainSyncReads(backend: ReadSyncBackend): void {
  const b = backend as ReadSyncBackend & { [WRAPPED]?: true };
  if (b[WRAPPED]) return;
  const original = b.readSync.bind(b);
  b.readSync = (dataId: object) => {
    try {
      return original(dataId);
    } catch (err) {
      throw new Error(`${SYNC_READ_MESSAGE} (tfjs-webgpu: ${(err as Error).message})`, { cause: err });
    }
  };
  b[WRAPPED] = true;
}
