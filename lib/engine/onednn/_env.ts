// Private: environment lookups that never throw (no --allow-env means "not set"), so importing the backend
// cannot fail. Knobs read: ONEDNN_LIBRARY, ONEDNN_THREADS, ONEDNN_DEBUG, ONEDNN_LAZY, ONEDNN_ELTWISE,
// ONEDNN_POOL_MB, ONEDNN_REORDER_CACHE_MB, ONEDNN_CONV_ACT (see mod.ts).

export function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
