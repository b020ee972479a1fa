// Private: oneDNN v2 C API bindings through Deno FFI, struct sizes and enum values, and small helpers
// (memory descriptors, primitive descriptors, execution plans with reorders from/to the user's layout).
//
// Sizes and enum values come from the installed oneDNN 2.6.3 headers (/usr/include/oneapi/dnnl/dnnl_types.h,
// checked with a C program: sizeof(dnnl_memory_desc_t) = 696, offsetof(data_type) = 104, ...). `openOnednn()`
// checks the version and the memory-descriptor layout at start-up and refuses to run when they do not match.

import { alloc, free as freeArray, isCacheable, onRelease } from "./_memory.ts";
import { env } from "./_env.ts";

// ---- enum values (oneDNN 2.x, dnnl_types.h) ----
export const DT_F32 = 3;
export const TAG_ANY = 1;
export const TAG_A = 2; // also dnnl_x
export const TAG_ABCD = 5; // also nchw, oihw
export const TAG_NHWC = 20; // dnnl_acdb
export const TAG_HWIO = 30; // dnnl_cdba

export const PROP_FWD_TRAINING = 64;
export const PROP_FWD_INFERENCE = 96;
export const PROP_BACKWARD = 128;

export const ALG_CONV_DIRECT = 1;
export const ALG_ELTWISE_RELU = 31;
export const ALG_ELTWISE_ELU = 63;
export const ALG_ELTWISE_LOGISTIC = 175;
export const ALG_ELTWISE_CLIP_V2 = 16;
export const ALG_POOL_MAX = 511;
export const ALG_POOL_AVG_INCLUDE = 767;
export const ALG_POOL_AVG_EXCLUDE = 1023;
export const ALG_BINARY_ADD = 131056;
export const ALG_BINARY_MUL = 131057;

export const Q_SRC_MD = 129;
export const Q_DIFF_SRC_MD = 130;
export const Q_WEIGHTS_MD = 131;
export const Q_DIFF_WEIGHTS_MD = 132;
export const Q_DST_MD = 133;
export const Q_DIFF_DST_MD = 134;
export const Q_WORKSPACE_MD = 135;
export const Q_IMPL_INFO_STR = 8;

export const ARG_SRC = 1;
export const ARG_SRC_1 = 2;
export const ARG_DST = 17;
export const ARG_WEIGHTS = 33;
export const ARG_BIAS = 41;
export const ARG_MEAN = 49;
export const ARG_VARIANCE = 50;
export const ARG_SCALE = 51;
export const ARG_SHIFT = 52;
export const ARG_WORKSPACE = 64;
export const ARG_DIFF_SRC = 129;
export const ARG_DIFF_DST = 145;
export const ARG_DIFF_WEIGHTS = 161;
export const ARG_DIFF_SCALE = 255;
export const ARG_DIFF_SHIFT = 256;

export const BN_USE_GLOBAL_STATS = 1;
export const BN_FUSE_NORM_RELU = 4;
export const BN_USE_SCALE = 8;
export const BN_USE_SHIFT = 16;

const ENGINE_CPU = 1;
const SCRATCHPAD_MODE_USER = 1;
const Q_SCRATCHPAD_MD = 136;
const ARG_SCRATCHPAD = 80;
const ARG_FROM = 1;
const ARG_TO = 17;
const STREAM_DEFAULT_FLAGS = 1;

// ---- struct layout (x86-64, oneDNN 2.6.3) ----
export const MD_SIZE = 696;
const MD_OFF_DIMS = 8;
const MD_OFF_DATA_TYPE = 104;
const MAX_NDIMS = 12;
/** Op descriptors are opaque to us; the largest one we use (dnnl_convolution_desc_t) is 5976 bytes. */
const OP_DESC_BYTES = 8192;

const STATUS_NAMES = [
  "success",
  "out_of_memory",
  "invalid_arguments",
  "unimplemented",
  "iterator_ends",
  "runtime_error",
  "not_required",
];

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_get_effective_cpu_isa: { parameters: [], result: "i32" },
  dnnl_set_verbose: { parameters: ["i32"], result: "i32" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: { parameters: ["buffer", "i32", "buffer", "i32", "i32"], result: "i32" },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_memory_desc_get_size: { parameters: ["buffer"], result: "usize" },
  dnnl_memory_desc_equal: { parameters: ["buffer", "buffer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "buffer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_primitive_attr_set_scratchpad_mode: { parameters: ["pointer", "i32"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_eltwise: { parameters: ["pointer", "f32", "i32", "f32", "f32"], result: "i32" },
  dnnl_post_ops_append_sum: { parameters: ["pointer", "f32"], result: "i32" },
  dnnl_post_ops_append_binary: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_desc_query: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  dnnl_dilated_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_matmul_desc_init: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"], result: "i32" },
  dnnl_pooling_v2_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_pooling_v2_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: { parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"], result: "i32" },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_binary_desc_init: { parameters: ["buffer", "i32", "buffer", "buffer", "buffer"], result: "i32" },
  dnnl_reduction_desc_init: { parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;
export type Fns = Lib["symbols"];

/** A memory descriptor: 696 bytes owned by JS, passed to oneDNN by pointer. */
export type Md = Uint8Array<ArrayBuffer>;

/** The opened library with engine and stream; created once by `openOnednn()`. */
export interface Dnnl {
  fn: Fns;
  engine: Deno.PointerObject;
  stream: Deno.PointerObject;
  version: string;
  library: string;
}

let dnnl: Dnnl | null = null;

/** The opened library; only valid after a successful `openOnednn()`. */
export function lib(): Dnnl {
  if (dnnl === null) throw new Error("onednn: library not opened");
  return dnnl;
}

/** dnnl_cpu_isa_avx512_core: its bits are all set when oneDNN may use AVX-512 (F, CD, BW, VL, DQ) kernels. */
const ISA_AVX512_CORE = 0x27;

/** Whether oneDNN runs AVX-512 kernels here (dnnl_get_effective_cpu_isa). */
export function hasAvx512Core(): boolean {
  return (lib().fn.dnnl_get_effective_cpu_isa() & ISA_AVX512_CORE) === ISA_AVX512_CORE;
}

/** Thrown for any failing oneDNN call; kernels catch it and fall back to the cpu backend. */
export class DnnlError extends Error {}

export function check(status: number, what: string): void {
  if (status !== 0) {
    throw new DnnlError(`onednn: ${what} failed with status ${STATUS_NAMES[status] ?? status}`);
  }
}

const outPtr = new BigUint64Array(1);
function takeOut(what: string): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(outPtr[0]);
  if (p === null) throw new DnnlError(`onednn: ${what} returned a null handle`);
  return p;
}
const outBytes = new Uint8Array(outPtr.buffer);

const LIB_CANDIDATES = [
  "libdnnl.so.2",
  "/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
  "/usr/local/lib/libdnnl.so.2",
  "/usr/lib/libdnnl.so.2",
];

/**
 * Opens libdnnl, checks the version (2.x, the v2 C API) and the memory-descriptor layout, and creates the CPU
 * engine and stream. Returns an error message instead of throwing.
 */
export function openOnednn(): { ok: true; dnnl: Dnnl } | { ok: false; reason: string } {
  if (dnnl !== null) return { ok: true, dnnl };
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") {
    return { ok: false, reason: "Deno.dlopen is not available (run with --allow-ffi / -A)" };
  }
  configureOpenMp();
  const extra = env("ONEDNN_LIBRARY");
  const candidates = extra ? [extra, ...LIB_CANDIDATES] : LIB_CANDIDATES;
  let opened: Lib | null = null;
  let library = "";
  const errors: string[] = [];
  for (const path of candidates) {
    try {
      opened = Deno.dlopen(path, SYMBOLS);
      library = path;
      break;
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  if (opened === null) {
    const v3 = probe("libdnnl.so.3");
    return {
      ok: false,
      reason: v3
        ? "only oneDNN v3 (libdnnl.so.3) was found; this backend uses the oneDNN v2 C API (libdnnl.so.2)"
        : `libdnnl.so.2 not found or not loadable (${errors[0] ?? "no candidates"})`,
    };
  }
  try {
    const fn = opened.symbols;
    const vp = fn.dnnl_version();
    if (vp === null) throw new Error("dnnl_version() returned null");
    const view = new Deno.UnsafePointerView(vp);
    const major = view.getInt32(0), minor = view.getInt32(4), patch = view.getInt32(8);
    const version = `${major}.${minor}.${patch}`;
    if (major !== 2 || minor < 5) {
      throw new Error(`oneDNN ${version} found; this backend needs the 2.x C API (2.5 or newer)`);
    }
    checkLayout(fn);
    check(fn.dnnl_engine_create(outBytes, ENGINE_CPU, 0n), "dnnl_engine_create");
    const engine = takeOut("dnnl_engine_create");
    check(fn.dnnl_stream_create(outBytes, engine, STREAM_DEFAULT_FLAGS), "dnnl_stream_create");
    const stream = takeOut("dnnl_stream_create");
    dnnl = { fn, engine, stream, version, library };
    return { ok: true, dnnl };
  } catch (e) {
    opened.close();
    return { ok: false, reason: (e as Error).message };
  }
}

/**
 * oneDNN's OpenMP runtime (libgomp) reads its settings from the environment when the library is loaded.
 * - OMP_WAIT_POLICY=passive unless set: threads sleep at barriers instead of spinning. On a machine whose cores
 *   other processes also use, spinning made a training step ~2.5x slower (a spinning thread holds a core the
 *   descheduled one needs); on an idle machine the difference is within noise.
 * - ONEDNN_THREADS=n sets OMP_NUM_THREADS (default: all cores).
 */
function configureOpenMp(): void {
  try {
    if (!Deno.env.get("OMP_WAIT_POLICY")) Deno.env.set("OMP_WAIT_POLICY", "passive");
    const threads = Deno.env.get("ONEDNN_THREADS");
    if (threads && Number(threads) > 0 && !Deno.env.get("OMP_NUM_THREADS")) Deno.env.set("OMP_NUM_THREADS", threads);
  } catch {
    // no --allow-env: keep the defaults
  }
}

function probe(path: string): boolean {
  try {
    Deno.dlopen(path, { dnnl_version: { parameters: [], result: "pointer" } }).close();
    return true;
  } catch {
    return false;
  }
}

/** Checks that the memory descriptor layout matches what this file assumes (size, dims and data_type offsets). */
function checkLayout(fn: Fns): void {
  const guard = 0xa5;
  const buf = new Uint8Array(MD_SIZE + 256).fill(guard);
  const dims = new BigInt64Array([2n, 3n, 5n, 7n]);
  check(fn.dnnl_memory_desc_init_by_tag(buf, 4, dims, DT_F32, TAG_NHWC), "dnnl_memory_desc_init_by_tag");
  const dv = new DataView(buf.buffer);
  const ok = dv.getInt32(0, true) === 4 &&
    dv.getBigInt64(MD_OFF_DIMS, true) === 2n && dv.getBigInt64(MD_OFF_DIMS + 24, true) === 7n &&
    dv.getInt32(MD_OFF_DATA_TYPE, true) === DT_F32 &&
    buf.subarray(MD_SIZE).every((b) => b === guard) &&
    Number(fn.dnnl_memory_desc_get_size(buf)) === 2 * 3 * 5 * 7 * 4;
  if (!ok) throw new Error("dnnl_memory_desc_t layout differs from the one this backend was written for");
  // The convolution descriptor (the largest op descriptor we use) must fit in OP_DESC_BYTES.
  const op = new Uint8Array(OP_DESC_BYTES + 64).fill(guard);
  const w = new Uint8Array(MD_SIZE), d = new Uint8Array(MD_SIZE);
  check(fn.dnnl_memory_desc_init_by_tag(w, 4, new BigInt64Array([4n, 3n, 1n, 1n]), DT_F32, TAG_ANY), "md w");
  check(fn.dnnl_memory_desc_init_by_tag(d, 4, new BigInt64Array([2n, 4n, 5n, 7n]), DT_F32, TAG_ANY), "md d");
  const z = new BigInt64Array(MAX_NDIMS), one = new BigInt64Array([1n, 1n]);
  check(
    fn.dnnl_dilated_convolution_forward_desc_init(
      op,
      PROP_FWD_TRAINING,
      ALG_CONV_DIRECT,
      buf,
      w,
      null,
      d,
      one,
      z,
      z,
      z,
    ),
    "dnnl_convolution_forward_desc_init",
  );
  if (!op.subarray(OP_DESC_BYTES).every((b) => b === guard)) {
    throw new Error("dnnl_convolution_desc_t is larger than this backend expects");
  }
}

// ---- helpers ----

/** A fresh op-descriptor buffer. */
export function opDesc(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(OP_DESC_BYTES);
}

export function dims64(d: readonly number[]): BigInt64Array<ArrayBuffer> {
  const a = new BigInt64Array(Math.max(d.length, 1));
  for (let i = 0; i < d.length; i++) a[i] = BigInt(d[i]);
  return a;
}

export function mdTag(dims: readonly number[], tag: number): Md {
  const md = new Uint8Array(MD_SIZE);
  check(lib().fn.dnnl_memory_desc_init_by_tag(md, dims.length, dims64(dims), DT_F32, tag), "memory_desc_init_by_tag");
  return md;
}

export function mdStrides(dims: readonly number[], strides: readonly number[]): Md {
  const md = new Uint8Array(MD_SIZE);
  check(
    lib().fn.dnnl_memory_desc_init_by_strides(md, dims.length, dims64(dims), DT_F32, dims64(strides)),
    "memory_desc_init_by_strides",
  );
  return md;
}

export function mdBytes(md: Md): number {
  return Number(lib().fn.dnnl_memory_desc_get_size(md));
}

export function mdEqual(a: Md, b: Md): boolean {
  return lib().fn.dnnl_memory_desc_equal(a, b) !== 0;
}

export function mdNdims(md: Md): number {
  return new DataView(md.buffer).getInt32(0, true);
}

/** Copies the memory descriptor oneDNN chose for `what` (e.g. Q_SRC_MD) out of a primitive descriptor. */
export function queryMd(pd: Deno.PointerObject, what: number, index = 0): Md | null {
  const p = lib().fn.dnnl_primitive_desc_query_md(pd, what, index);
  if (p === null) return null;
  const md = new Uint8Array(MD_SIZE);
  new Deno.UnsafePointerView(p).copyInto(md);
  return mdNdims(md) === 0 ? null : md;
}

export function implInfo(pd: Deno.PointerObject): string {
  check(lib().fn.dnnl_primitive_desc_query(pd, Q_IMPL_INFO_STR, 0, outBytes), "query impl_info");
  const p = Deno.UnsafePointer.create(outPtr[0]);
  return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
}

/**
 * Post-op chain attribute (null for none): eltwise ops (`alg` a dnnl eltwise algorithm, `alpha`, `beta`), with
 * `alg` POST_SUM the sum post-op: dst = result + alpha · (what dst held before the primitive ran), or with `src1`
 * a binary post-op: dst = result (`alg`, a dnnl binary algorithm) a second tensor of layout `src1`, given at
 * execution as argument `postOpSrc1(index of this post-op in the chain)`.
 */
export interface PostOp {
  alg: number;
  alpha: number;
  beta: number;
  src1?: Md;
}

/** The execution argument of a binary post-op's second tensor (DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | SRC_1). */
export function postOpSrc1(index: number): number {
  return 16384 * (index + 1) | ARG_SRC_1;
}

/** PostOp.alg of the sum post-op (not a dnnl algorithm number). */
export const POST_SUM = -1;

export function makeAttr(post: PostOp[]): Deno.PointerObject | null {
  if (post.length === 0) return null;
  const { fn } = lib();
  check(fn.dnnl_post_ops_create(outBytes), "post_ops_create");
  const ops = takeOut("post_ops_create");
  try {
    for (const p of post) {
      if (p.alg === POST_SUM) check(fn.dnnl_post_ops_append_sum(ops, p.alpha), "append_sum");
      else if (p.src1 !== undefined) check(fn.dnnl_post_ops_append_binary(ops, p.alg, p.src1), "append_binary");
      else check(fn.dnnl_post_ops_append_eltwise(ops, 1, p.alg, p.alpha, p.beta), "append_eltwise");
    }
    check(fn.dnnl_primitive_attr_create(outBytes), "attr_create");
    const attr = takeOut("attr_create");
    check(fn.dnnl_primitive_attr_set_post_ops(attr, ops), "attr_set_post_ops");
    return attr;
  } finally {
    fn.dnnl_post_ops_destroy(ops);
  }
}

/**
 * Creates a primitive descriptor (takes ownership of `attr`). Scratchpads are user-managed: every primitive
 * gets the one shared scratch buffer at execution (see Plan) instead of owning its own, so cached primitives
 * hold no large native buffers.
 */
export function createPd(
  op: Uint8Array<ArrayBuffer>,
  attr: Deno.PointerObject | null = null,
  hint: Deno.PointerObject | null = null,
): Deno.PointerObject {
  const { fn, engine } = lib();
  if (attr === null) {
    check(fn.dnnl_primitive_attr_create(outBytes), "attr_create");
    attr = takeOut("attr_create");
  }
  try {
    check(fn.dnnl_primitive_attr_set_scratchpad_mode(attr, SCRATCHPAD_MODE_USER), "attr_set_scratchpad_mode");
    check(fn.dnnl_primitive_desc_create(outBytes, op, attr, engine, hint), "primitive_desc_create");
  } finally {
    if (attr !== null) fn.dnnl_primitive_attr_destroy(attr);
  }
  return takeOut("primitive_desc_create");
}

function createPrimitive(pd: Deno.PointerObject): Deno.PointerObject {
  check(lib().fn.dnnl_primitive_create(outBytes, pd), "primitive_create");
  return takeOut("primitive_create");
}

function createMemory(md: Md): Deno.PointerObject {
  const { fn, engine } = lib();
  check(fn.dnnl_memory_create(outBytes, md, engine, null), "memory_create");
  return takeOut("memory_create");
}

function createReorder(from: Md, to: Md): Deno.PointerObject {
  const { fn, engine } = lib();
  check(fn.dnnl_reorder_primitive_desc_create(outBytes, from, engine, to, engine, null), "reorder_pd_create");
  const pd = takeOut("reorder_pd_create");
  try {
    return createPrimitive(pd);
  } finally {
    fn.dnnl_primitive_desc_destroy(pd);
  }
}

/**
 * The address of a typed array's data, valid until the array is garbage collected. V8 keeps typed arrays of up to
 * 64 bytes inside its heap, where a garbage collection may move them; reading `.buffer` moves such an array's
 * data off-heap for good, so a handle given to oneDNN cannot go stale before the primitive runs.
 */
function stablePointer(view: ArrayBufferView): Deno.PointerValue {
  void view.buffer;
  return Deno.UnsafePointer.of(view);
}

// ---- scratch buffers shared by all plans (execution is synchronous and single-threaded on the JS side) ----

const scratch: Uint8Array<ArrayBuffer>[] = [];
const scratchPtr: Deno.PointerObject[] = [];

/** A 64-byte-aligned scratch buffer for slot `slot` of at least `bytes` bytes; valid until the next call. */
function scratchBuffer(slot: number, bytes: number): Deno.PointerObject {
  const cur = scratch[slot];
  if (cur === undefined || cur.byteLength < bytes + 64) {
    const buf = new Uint8Array(Math.ceil((bytes + 64) * 1.25));
    scratch[slot] = buf;
    const base = stablePointer(buf)!;
    const addr = Deno.UnsafePointer.value(base) as bigint;
    const pad = Number((64n - (addr % 64n)) % 64n);
    scratchPtr[slot] = Deno.UnsafePointer.offset(base, pad)!;
  }
  return scratchPtr[slot];
}

/** Bytes currently held in scratch buffers (for the memory tests). */
export function scratchBytes(): number {
  return scratch.reduce((s, b) => s + (b?.byteLength ?? 0), 0);
}

// ---- execution plans ----

/** First scratch slot for plan-internal buffers (reorder buffers use slots 0, 1, ...). */
export const INTERNAL_SLOT = 16;
/** The slot of the primitives' shared scratchpad. */
const SCRATCHPAD_SLOT = 31;

/** One argument of a primitive: the user's memory descriptor (plain tfjs layout) and the one the primitive wants. */
export interface ArgSpec {
  arg: number;
  /** Layout of the user's (tfjs) buffer. */
  user: Md;
  /** What the primitive expects; when different from `user`, a reorder goes through a scratch buffer. */
  prim: Md;
  /** Written by the primitive (reordered back to the user layout after execution). */
  out?: boolean;
  /**
   * Input whose reordered copy may be kept and reused by later plans needing the same layout (e.g. a conv's
   * src in forward and backward-weights, dy in backward-data and backward-weights, weights across calls).
   */
  cache?: boolean;
}

interface PlanArg {
  arg: number;
  out: boolean;
  /** Hash of the primitive-side memory descriptor when the reordered input may be cached; else null. */
  cacheKey: string | null;
  userMem: Deno.PointerObject;
  primMem: Deno.PointerObject;
  reorder: Deno.PointerObject | null;
  bytes: number;
}

/**
 * A primitive plus the memory objects and reorders needed to run it on tfjs buffers. Created once per shape
 * key and reused; the data handles are set just before each execution.
 */
export class Plan {
  readonly prim: Deno.PointerObject;
  private readonly args: PlanArg[] = [];
  private readonly extra: { arg: number; mem: Deno.PointerObject; bytes: number; slot: number }[] = [];
  private readonly execArgs: Uint8Array<ArrayBuffer>;
  private readonly reorderArgs = new Uint8Array(32);
  readonly impl: string;

  /**
   * `internal`: arguments with no user buffer (a pooling workspace, a discarded output), kept in scratch slot
   * `slot` (use INTERNAL_SLOT + i so that two plans run back to back can share them).
   */
  constructor(pd: Deno.PointerObject, specs: ArgSpec[], internal: { arg: number; md: Md; slot: number }[] = []) {
    const { fn } = lib();
    try {
      this.impl = implInfo(pd);
      this.prim = createPrimitive(pd);
      const pad = queryMd(pd, Q_SCRATCHPAD_MD);
      if (pad !== null && mdBytes(pad) > 0) {
        internal = [...internal, { arg: ARG_SCRATCHPAD, md: pad, slot: SCRATCHPAD_SLOT }];
      }
    } finally {
      fn.dnnl_primitive_desc_destroy(pd);
    }
    for (const s of specs) {
      const userMem = createMemory(s.user);
      let primMem = userMem;
      let reorder: Deno.PointerObject | null = null;
      if (!mdEqual(s.user, s.prim)) {
        primMem = createMemory(s.prim);
        reorder = s.out ? createReorder(s.prim, s.user) : createReorder(s.user, s.prim);
      }
      const cacheKey = s.cache && reorder !== null && !s.out ? mdHash(s.prim) : null;
      this.args.push({ arg: s.arg, out: !!s.out, cacheKey, userMem, primMem, reorder, bytes: mdBytes(s.prim) });
    }
    for (const e of internal) {
      const mem = createMemory(e.md);
      this.extra.push({ arg: e.arg, mem, bytes: mdBytes(e.md), slot: e.slot });
    }
    const n = this.args.length + this.extra.length;
    this.execArgs = new Uint8Array(16 * n);
    const dv = new DataView(this.execArgs.buffer);
    let i = 0;
    for (const a of this.args) {
      dv.setInt32(16 * i, a.arg, true);
      dv.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(a.primMem)), true);
      i++;
    }
    for (const e of this.extra) {
      dv.setInt32(16 * i, e.arg, true);
      dv.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(e.mem)), true);
      i++;
    }
  }

  /** Whether an output is written through a reorder (its primitive buffer is scratch, not the user's). */
  outputReordered(): boolean {
    return this.args.some((a) => a.out && a.reorder !== null);
  }

  /**
   * Runs the primitive. `bufs[i]` is the user buffer for `specs[i]` (a tfjs TypedArray); they must stay alive
   * (they do: the caller holds them) until this returns.
   */
  run(bufs: readonly ArrayBufferView[]): void {
    const { fn, stream } = lib();
    let slot = 0;
    for (let i = 0; i < this.args.length; i++) {
      const a = this.args[i];
      check(fn.dnnl_memory_set_data_handle(a.userMem, stablePointer(bufs[i])), "set_data_handle");
      if (a.reorder === null) continue;
      if (a.cacheKey !== null && isCacheable(bufs[i])) {
        const hit = reorderCache.get(bufs[i] as Float32Array, a.cacheKey);
        if (hit !== undefined) {
          check(fn.dnnl_memory_set_data_handle(a.primMem, stablePointer(hit)), "set_data_handle");
          continue;
        }
        const copy = alloc(Math.ceil(a.bytes / 4));
        check(fn.dnnl_memory_set_data_handle(a.primMem, stablePointer(copy)), "set_data_handle");
        this.runReorder(a.reorder, a.userMem, a.primMem);
        reorderCache.put(bufs[i] as Float32Array, a.cacheKey, copy);
        continue;
      }
      check(fn.dnnl_memory_set_data_handle(a.primMem, scratchBuffer(slot++, a.bytes)), "set_data_handle");
      if (!a.out) this.runReorder(a.reorder, a.userMem, a.primMem);
    }
    for (const e of this.extra) {
      check(fn.dnnl_memory_set_data_handle(e.mem, scratchBuffer(e.slot, e.bytes)), "set_data_handle");
    }
    check(fn.dnnl_primitive_execute(this.prim, stream, this.execArgs.length / 16, this.execArgs), "execute");
    for (const a of this.args) {
      if (a.out && a.reorder !== null) this.runReorder(a.reorder, a.primMem, a.userMem);
    }
    check(fn.dnnl_stream_wait(stream), "stream_wait");
  }

  private runReorder(r: Deno.PointerObject, from: Deno.PointerObject, to: Deno.PointerObject): void {
    const { fn, stream } = lib();
    const dv = new DataView(this.reorderArgs.buffer);
    dv.setInt32(0, ARG_FROM, true);
    dv.setBigUint64(8, BigInt(Deno.UnsafePointer.value(from)), true);
    dv.setInt32(16, ARG_TO, true);
    dv.setBigUint64(24, BigInt(Deno.UnsafePointer.value(to)), true);
    check(fn.dnnl_primitive_execute(r, stream, 2, this.reorderArgs), "reorder execute");
  }

  destroy(): void {
    const { fn } = lib();
    for (const a of this.args) {
      fn.dnnl_memory_destroy(a.userMem);
      if (a.primMem !== a.userMem) fn.dnnl_memory_destroy(a.primMem);
      if (a.reorder !== null) fn.dnnl_primitive_destroy(a.reorder);
    }
    for (const e of this.extra) fn.dnnl_memory_destroy(e.mem);
    fn.dnnl_primitive_destroy(this.prim);
  }
}

// ---- cache of reordered inputs ----

function mdHash(md: Md): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < md.length; i++) {
    h1 = Math.imul(h1 ^ md[i], 0x01000193);
    h2 = Math.imul(h2 ^ md[i], 0x5bd1e995) ^ (h2 >>> 13);
  }
  return `${(h1 >>> 0).toString(36)}.${(h2 >>> 0).toString(36)}`;
}

/**
 * Reordered (oneDNN-layout) copies of tfjs arrays, keyed by the array and the target layout (the copies come
 * from the output pool and go back to it). An entry is dropped when its tensor's data is released (a pool array's
 * contents are about to change), or when the cache exceeds its byte budget (least recently used first).
 */
class ReorderCache {
  private readonly byArray = new Map<Float32Array, Map<string, Float32Array<ArrayBuffer>>>();
  private bytes = 0;
  readonly maxBytes = (Number(env("ONEDNN_REORDER_CACHE_MB")) || 256) * 2 ** 20;

  get(values: Float32Array, key: string): Float32Array<ArrayBuffer> | undefined {
    const m = this.byArray.get(values);
    const hit = m?.get(key);
    if (hit !== undefined) {
      this.byArray.delete(values); // refresh LRU position
      this.byArray.set(values, m!);
    }
    return hit;
  }

  put(values: Float32Array, key: string, copy: Float32Array<ArrayBuffer>): void {
    if (copy.byteLength > this.maxBytes / 4) return void freeArray(copy);
    let m = this.byArray.get(values);
    if (m === undefined) this.byArray.set(values, m = new Map());
    m.set(key, copy);
    this.bytes += copy.byteLength;
    while (this.bytes > this.maxBytes && this.byArray.size > 1) {
      const [oldest] = this.byArray.keys();
      this.drop(oldest);
    }
  }

  drop(values: Float32Array): void {
    const m = this.byArray.get(values);
    if (m === undefined) return;
    for (const c of m.values()) {
      this.bytes -= c.byteLength;
      freeArray(c); // never visible to tfjs: straight back to the output pool
    }
    this.byArray.delete(values);
  }

  get size(): number {
    return this.bytes;
  }
}

const reorderCache = new ReorderCache();
onRelease((values) => reorderCache.drop(values));

// ---- plan cache ----

const MAX_PLANS = 256;
const plans = new Map<string, Plan | null>();
let plansCreated = 0;

/**
 * The cached plan for `key`, built by `make` on first use. A `null` result (unsupported) is cached too.
 * The cache is bounded (least recently used plans are destroyed).
 */
export function cachedPlan(key: string, make: () => Plan | null): Plan | null {
  const hit = plans.get(key);
  if (hit !== undefined) {
    plans.delete(key);
    plans.set(key, hit);
    return hit;
  }
  let plan: Plan | null = null;
  try {
    plan = make();
  } catch (e) {
    if (!(e instanceof DnnlError)) throw e;
    if (env("ONEDNN_DEBUG")) console.error(`onednn: ${key}: ${e.message}`);
    plan = null;
  }
  plansCreated++;
  plans.set(key, plan);
  if (plans.size > MAX_PLANS) {
    const [oldKey, old] = plans.entries().next().value as [string, Plan | null];
    plans.delete(oldKey);
    old?.destroy();
  }
  return plan;
}

/** Counters for tests: cached plans, plans ever created, scratch bytes. */
export function cacheStats(): { plans: number; created: number; scratchBytes: number; reorderCacheBytes: number } {
  return {
    plans: plans.size,
    created: plansCreated,
    scratchBytes: scratchBytes(),
    reorderCacheBytes: reorderCache.size,
  };
}
