/**
 * Worker thread of AugmentWorker (lib/data/augment.ts): augments the packed portraits it is sent with the draws it
 * is sent, and sends the packed result back (transferred, not copied).
 */
import { type AugmentDraw, augmentPacked } from "./augment.ts";

interface Job {
  id: number;
  src: Uint8Array;
  draws: AugmentDraw[];
}

// The worker's global scope, typed here: the project type-checks against deno.window.
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = async (e) => {
  const { id, src, draws } = e.data;
  try {
    const out = await augmentPacked(src, draws);
    scope.postMessage({ id, out }, [out.buffer]);
  } catch (err) {
    scope.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
