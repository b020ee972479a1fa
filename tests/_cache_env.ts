/**
 * Imported by every test module that opens a dataset (through _fixtures.ts or directly): unless the caller set
 * TP_CACHE_DIR, the module's pixel and descriptor caches go to a temp folder that is removed when the module ends,
 * so tests never fill ~/.cache/tiny-portraits. Subprocesses (CLI, demo, notebooks) inherit it.
 */
if (!Deno.env.get("TP_CACHE_DIR")) {
  const dir = Deno.makeTempDirSync({ prefix: "tp_test_cache_" });
  Deno.env.set("TP_CACHE_DIR", dir);
  globalThis.addEventListener("unload", () => {
    Deno.env.delete("TP_CACHE_DIR");
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  });
}
