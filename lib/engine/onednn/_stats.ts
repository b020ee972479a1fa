// Private: counters of kernels run by oneDNN/fast paths vs. handed to the cpu backend (for tests and profiling).

const hits = new Map<string, number>();
const fallbacks = new Map<string, number>();

export function countHit(name: string): void {
  hits.set(name, (hits.get(name) ?? 0) + 1);
}

export function countFallback(name: string): void {
  fallbacks.set(name, (fallbacks.get(name) ?? 0) + 1);
}

/** Snapshot of the counters: kernel name -> calls handled by the override / handed to cpu. */
export function kernelStats(): { hits: Record<string, number>; fallbacks: Record<string, number> } {
  return { hits: Object.fromEntries(hits), fallbacks: Object.fromEntries(fallbacks) };
}

export function resetKernelStats(): void {
  hits.clear();
  fallbacks.clear();
}
