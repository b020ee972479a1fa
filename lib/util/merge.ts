/** Config layering (STYLE.md 3, 5): overrides that are `undefined` never replace defaults. */
/** Defaults overlaid with the defined values of `overrides` (a shallow copy; `defaults` is not changed). */
export function mergeDefined<C extends object>(defaults: C, overrides: Partial<C> = {}): C {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) out[k] = v;
  return out as C;
}
