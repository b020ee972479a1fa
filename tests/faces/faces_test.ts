import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/mod.ts";
import {
  ageGenderPredict,
  detectFaces,
  detectFacesBatch,
  faceApiEngineCheck,
  faceDescriptors,
  loadFaceModels,
  locateEyes,
  locateEyesBatch,
  modelDir,
  PORTRAIT_FRAMING,
  PORTRAIT_HEIGHT,
  PORTRAIT_WIDTH,
  portraitFromImage,
  type PortraitResult,
  portraitsFromImages,
} from "../../lib/faces/mod.ts";

// Photos that ship with @vladmandic/face-api (group photos of young women); read in place, never copied.
const DEMO = join(modelDir(), "..", "demo");
const PHOTOS = ["sample1.jpg", "sample3.jpg", "sample4.jpg", "sample6.jpg"].map((f) => join(DEMO, f));
const BYTES = PORTRAIT_WIDTH * PORTRAIT_HEIGHT * 3;
const BACKEND = Deno.env.get("TP_BACKEND") ?? "wasm";

async function engine(): Promise<void> {
  if (tf.getBackend() !== BACKEND) await initEngine({ backend: BACKEND, verbose: false });
}

/** Four re-framed portraits of four different people, made once. */
let portraitsPromise: Promise<Uint8Array> | null = null;
function portraits(): Promise<Uint8Array> {
  portraitsPromise ??= (async () => {
    const out = new Uint8Array(PHOTOS.length * BYTES);
    for (const [i, f] of PHOTOS.entries()) {
      const r = await portraitFromImage(f, { detector: "tiny" });
      assert.ok(r.faceFound, `no face found in ${f}`);
      out.set(r.pixels, i * BYTES);
    }
    return out;
  })();
  return portraitsPromise;
}

async function readRaw(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

function distance(a: Float32Array, i: number, b: Float32Array, j: number): number {
  let s = 0;
  for (let k = 0; k < 128; k++) s += (a[i * 128 + k] - b[j * 128 + k]) ** 2;
  return Math.sqrt(s);
}

Deno.test("loadFaceModels() loads all five nets from node_modules without touching the network", async () => {
  await engine();
  const realFetch = globalThis.fetch;
  globalThis.fetch = () => Promise.reject(new Error("network used"));
  try {
    await loadFaceModels();
    await loadFaceModels(["detector", "recognition"]); // idempotent
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.ok(modelDir().includes("node_modules"), modelDir());
  await assert.rejects(loadFaceModels(["nose" as never]), /unknown model 'nose'/);
});

Deno.test("face-api shares the project's tfjs engine and runs on the backend initEngine chose", async () => {
  await engine();
  const c = await faceApiEngineCheck();
  assert.deepEqual(c, { sameEngine: true, sameTensorClass: true, backend: BACKEND, faceApiBackend: BACKEND });
  await initEngine({ backend: "cpu", verbose: false });
  try {
    assert.equal((await faceApiEngineCheck()).faceApiBackend, "cpu");
  } finally {
    await engine();
  }
});

Deno.test("faceDescriptors() gives rows x 128 finite descriptors of norm about 1.4, the same for the same image and apart for different people", async () => {
  await engine();
  const px = await portraits();
  const d = await faceDescriptors(px, [0, 1, 2, 3, 0]);
  assert.equal(d.length, 5 * 128);
  assert.ok(d.every(Number.isFinite));
  for (let i = 0; i < 5; i++) {
    const norm = Math.hypot(...d.subarray(i * 128, (i + 1) * 128));
    assert.ok(norm > 1 && norm < 2, `norm ${norm}`); // face-api's descriptors are not unit-normalised
  }
  assert.ok(distance(d, 0, d, 4) < 1e-4, "same image, same descriptor");
  for (let i = 0; i < 4; i++) {
    for (let j = i + 1; j < 4; j++) assert.ok(distance(d, i, d, j) > 0.3, `people ${i} and ${j} are ${distance(d, i, d, j)} apart`);
  }
  // Deterministic, independent of the batch size, and rows are honoured in order.
  const again = await faceDescriptors(px, [3, 0], { batchSize: 1 });
  for (let k = 0; k < 128; k++) {
    assert.ok(Math.abs(again[k] - d[3 * 128 + k]) < 1e-4);
    assert.ok(Math.abs(again[128 + k] - d[k]) < 1e-4);
  }
  const progress: number[] = [];
  await faceDescriptors(px, [0, 1, 2], { batchSize: 2, onProgress: (done) => progress.push(done) });
  assert.deepEqual(progress, [2, 3]);
  assert.equal((await faceDescriptors(px, [])).length, 0);
});

Deno.test("faceDescriptors() and ageGenderPredict() leave tf.memory().numTensors unchanged across repeated calls", async () => {
  await engine();
  const px = await portraits();
  await faceDescriptors(px, [0, 1]);
  await ageGenderPredict(px, [0, 1]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    await faceDescriptors(px, [0, 1, 2], { batchSize: 2 });
    await ageGenderPredict(px, [0, 1, 2], { batchSize: 2 });
    await detectFaces(px.subarray(0, BYTES), PORTRAIT_WIDTH, PORTRAIT_HEIGHT);
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("faceDescriptors() rejects rows outside the pixels and pixels that are not whole portraits", async () => {
  const px = new Uint8Array(2 * BYTES);
  await assert.rejects(faceDescriptors(px, [0, 2]), /row 2 \(at position 1\) is outside 0\.\.1/);
  await assert.rejects(faceDescriptors(px.subarray(1), [0]), /whole 108x84x3 portraits/);
  await assert.rejects(faceDescriptors(px, [0], { batchSize: 0 }), /batchSize to be a positive integer/);
});

Deno.test("ageGenderPredict() gives a probability of male and an age per row, and calls young women female", async () => {
  await engine();
  const px = await portraits();
  const { male, age } = await ageGenderPredict(px, [0, 1, 2, 3]);
  assert.equal(male.length, 4);
  assert.ok(male.every((p) => p >= 0 && p <= 1));
  assert.ok(age.every((a) => Number.isFinite(a) && a > 0 && a < 100));
  assert.ok(male.filter((p) => p < 0.5).length >= 3, `P(male) ${Array.from(male)}`);
});

Deno.test("detectFaces() returns boxes in the given image's pixels: shifting or shrinking the image moves them alike", async () => {
  await engine();
  const img = await readRaw(PHOTOS[0]);
  const half = await sharp(PHOTOS[0]).resize(img.width / 2).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const shift = 120;
  const moved = await sharp(PHOTOS[0]).extend({ left: shift, top: shift, background: "#000" }).removeAlpha().raw()
    .toBuffer({ resolveWithObject: true });
  const a = await detectFaces(img.data, img.width, img.height, { detector: "ssd" });
  const b = await detectFaces(new Uint8Array(half.data), half.info.width, half.info.height, { detector: "ssd" });
  const c = await detectFaces(new Uint8Array(moved.data), moved.info.width, moved.info.height, { detector: "ssd" });
  assert.equal(a.length, 3); // three women in sample1.jpg
  const centre = (f: { x: number; y: number; width: number; height: number }) => [f.x + f.width / 2, f.y + f.height / 2];
  for (const f of a) {
    const [cx, cy] = centre(f);
    assert.ok(f.x >= 0 && f.y >= 0 && f.x + f.width <= img.width && f.y + f.height <= img.height);
    const inHalf = b.find((g) => Math.hypot(centre(g)[0] * 2 - cx, centre(g)[1] * 2 - cy) < 0.15 * f.width);
    const inMoved = c.find((g) => Math.hypot(centre(g)[0] - shift - cx, centre(g)[1] - shift - cy) < 0.1 * f.width);
    assert.ok(inHalf, `face at ${cx},${cy} not found at half size`);
    assert.ok(inMoved, `face at ${cx},${cy} not found after shifting by ${shift}`);
  }
});

Deno.test("portraitFromImage() re-frames a photo's face into 108x84 with the eyes where Tiny Portraits have them", async () => {
  await engine();
  const r = await portraitFromImage(PHOTOS[0]);
  assert.equal(r.faceFound, true);
  assert.equal(r.pixels.length, BYTES);
  assert.deepEqual([r.sourceWidth, r.sourceHeight], [1920, 1280]);
  assert.ok(r.box && r.box.x >= 0 && r.box.x + r.box.width <= 1920 && r.box.score >= 0.5);
  // Round trip: the portrait's own face and eyes land on the framing.
  const boxes = await detectFaces(r.pixels, PORTRAIT_WIDTH, PORTRAIT_HEIGHT);
  assert.ok(boxes.length >= 1, "the re-framed portrait's face is found (with the default padding)");
  const eyes = await locateEyes({ data: r.pixels, width: PORTRAIT_WIDTH, height: PORTRAIT_HEIGHT }, boxes[0]);
  assert.ok(eyes);
  const ex = (eyes.left[0] + eyes.right[0]) / 2, ey = (eyes.left[1] + eyes.right[1]) / 2;
  assert.ok(Math.abs(ex - PORTRAIT_FRAMING.eyeX * PORTRAIT_WIDTH) < 4, `eyes at x ${ex}`);
  assert.ok(Math.abs(ey - PORTRAIT_FRAMING.eyeY * PORTRAIT_HEIGHT) < 4, `eyes at y ${ey}`);
});

Deno.test("portraitFromImage() falls back to a centre crop with faceFound false on noise, a gradient or a grey image", async () => {
  await engine();
  const dir = await Deno.makeTempDir();
  try {
    const noise = new Uint8Array(320 * 240 * 3);
    let s = 12345;
    for (let i = 0; i < noise.length; i++) noise[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    await sharp(noise, { raw: { width: 320, height: 240, channels: 3 } }).jpeg().toFile(join(dir, "noise.jpg"));
    await sharp(noise, { raw: { width: 320, height: 240, channels: 3 } }).greyscale().webp().toFile(join(dir, "grey.webp"));
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><defs><linearGradient id="g">` +
      `<stop offset="0" stop-color="#123"/><stop offset="1" stop-color="#fc8"/></linearGradient></defs>` +
      `<rect width="300" height="200" fill="url(#g)"/></svg>`;
    await sharp(new TextEncoder().encode(svg)).png().toFile(join(dir, "gradient.png"));
    for (const [name, w, h] of [["noise.jpg", 320, 240], ["grey.webp", 320, 240], ["gradient.png", 300, 200]] as const) {
      const r = await portraitFromImage(join(dir, name), { detector: "tiny" });
      assert.equal(r.faceFound, false, name);
      assert.equal(r.box, null);
      assert.equal(r.pixels.length, BYTES);
      assert.deepEqual([r.sourceWidth, r.sourceHeight], [w, h]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("portraitFromImage() places a thumbnail without a face where a face box goes (a tight crop the detector missed), filled as asked, faceFound false", async () => {
  await engine();
  const dir = await Deno.makeTempDir();
  try {
    const noise = new Uint8Array(120 * 120 * 3);
    let s = 777;
    for (let i = 0; i < noise.length; i++) noise[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    const path = join(dir, "thumb.png");
    await sharp(noise, { raw: { width: 120, height: 120, channels: 3 } }).png().toFile(path);
    const mean = [0, 1, 2].map((c) => noise.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (120 * 120));
    const r = await portraitFromImage(path, { detector: "tiny", fill: "mean" });
    assert.equal(r.faceFound, false);
    assert.equal(r.box, null);
    // The image spans the face box's width (57.5% of the portrait): the rest is outside.
    assert.ok(r.outside > 0.5 && r.outside < 0.8, `outside ${r.outside}`);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(r.pixels[c] - mean[c]) <= 0.5, "the top-left corner is the mean colour");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("portraitFromImage() throws an error naming the file when it is corrupt, not an image, or missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const corrupt = join(dir, "corrupt.jpg"), text = join(dir, "notes.png");
    await Deno.writeFile(corrupt, new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]));
    await Deno.writeTextFile(text, "not an image");
    const named = (p: string) => (err: Error) => err.message.includes(p);
    await assert.rejects(portraitFromImage(corrupt), named(corrupt));
    await assert.rejects(portraitFromImage(text), named(text));
    await assert.rejects(portraitFromImage(join(dir, "missing.png")), named(join(dir, "missing.png")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A face from a demo photo cut as a tight 200x200 crop (the case of UTKFace-style thumbnails), as PNG. */
async function tightCrop(): Promise<Uint8Array> {
  const r = await portraitFromImage(PHOTOS[1], { detector: "tiny" });
  const b = r.box!;
  const side = Math.round(Math.max(b.width, b.height) * 0.95);
  const left = Math.round(b.x + b.width / 2 - side / 2), top = Math.round(b.y + b.height / 2 - side / 2);
  return new Uint8Array(await sharp(PHOTOS[1]).extract({ left, top, width: side, height: side }).resize(200, 200).png().toBuffer());
}

Deno.test("detectFacesBatch() finds the same boxes as detectFaces() one image at a time, with both detectors and mixed image sizes, and names a malformed image by its position", async () => {
  await engine();
  const photo = await readRaw(PHOTOS[0]);
  const small = await sharp(PHOTOS[2]).resize(640).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const thumb = await sharp(await tightCrop()).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const px = await portraits();
  const images = [
    photo,
    { data: new Uint8Array(small.data), width: small.info.width, height: small.info.height },
    { data: new Uint8Array(thumb.data), width: 200, height: 200 },
    { data: px.subarray(0, BYTES), width: PORTRAIT_WIDTH, height: PORTRAIT_HEIGHT },
    { data: px.subarray(BYTES, 2 * BYTES), width: PORTRAIT_WIDTH, height: PORTRAIT_HEIGHT },
  ];
  for (const detector of ["tiny", "ssd"] as const) {
    const batch = await detectFacesBatch(images, { detector, minScore: 0.3, batchSize: 3 });
    assert.equal(batch.length, images.length);
    for (const [i, im] of images.entries()) {
      const one = await detectFaces(im.data, im.width, im.height, { detector, minScore: 0.3 });
      assert.equal(batch[i].length, one.length, `${detector}, image ${i}`);
      one.forEach((b, j) => {
        for (const k of ["x", "y", "width", "height", "score"] as const) assert.ok(Math.abs(b[k] - batch[i][j][k]) < 1e-3, `${detector} image ${i} face ${j} ${k}`);
      });
    }
    assert.ok(batch[2].length >= 1, `${detector}: the tight crop's face is found`);
  }
  assert.deepEqual(await detectFacesBatch([]), []);
  await assert.rejects(detectFacesBatch([images[3], { data: new Uint8Array(5), width: 2, height: 2 }]), /detectFacesBatch: image 1: expected 2x2x3 = 12 bytes of RGB, got 5/);
  await assert.rejects(detectFacesBatch([images[3]], { batchSize: 0 }), /detectFacesBatch: expected batchSize to be a positive integer, got 0/);
});

Deno.test("locateEyesBatch() gives the same eyes as locateEyes() face by face", async () => {
  await engine();
  const px = await portraits();
  const faces = [];
  for (let i = 0; i < 3; i++) {
    const img = { data: px.subarray(i * BYTES, (i + 1) * BYTES), width: PORTRAIT_WIDTH, height: PORTRAIT_HEIGHT };
    faces.push({ img, box: (await detectFaces(img.data, img.width, img.height))[0] });
  }
  const batch = await locateEyesBatch(faces);
  for (const [i, f] of faces.entries()) {
    const one = await locateEyes(f.img, f.box);
    assert.ok(one && batch[i]);
    for (const k of ["left", "right", "mouth"] as const) {
      assert.ok(Math.hypot(one[k][0] - batch[i]![k][0], one[k][1] - batch[i]![k][1]) < 1e-3, `face ${i} ${k}`);
    }
  }
});

Deno.test("portraitsFromImages() gives each file the same portrait as portraitFromImage(), an Error naming a broken file in its place, and progress per batch", async () => {
  await engine();
  const dir = await Deno.makeTempDir();
  try {
    const tight = join(dir, "tight.png"), broken = join(dir, "broken.jpg"), grey = join(dir, "grey.png");
    await Deno.writeFile(tight, await tightCrop());
    await Deno.writeTextFile(broken, "not a jpeg");
    await sharp({ create: { width: 90, height: 70, channels: 3, background: "#777" } }).png().toFile(grey);
    const paths = [PHOTOS[0], tight, broken, grey, PHOTOS[3]];
    const progress: number[] = [];
    for (const fill of ["edge", "blur"] as const) {
      const batch = await portraitsFromImages(paths, { detector: "tiny", fill, batchSize: 2, onProgress: (done) => progress.push(done) });
      assert.equal(batch.length, paths.length);
      assert.ok(batch[2] instanceof Error && batch[2].message.includes(broken), String(batch[2]));
      for (const i of [0, 1, 3, 4]) {
        const one = await portraitFromImage(paths[i], { detector: "tiny", fill });
        const b = batch[i] as PortraitResult;
        assert.equal(b.faceFound, one.faceFound, paths[i]);
        assert.deepEqual(b.pixels, one.pixels, `${fill}: ${paths[i]}`);
      }
      const t = batch[1] as PortraitResult;
      assert.ok(t.faceFound && t.outside > 0.5, `the tight crop fills ${t.outside} of the portrait`);
      assert.ok((batch[0] as PortraitResult).outside < 0.05, "a face inside a big photo needs (almost) no fill");
    }
    assert.deepEqual(progress, [2, 4, 5, 2, 4, 5]);
    await assert.rejects(portraitsFromImages(paths, { fill: "smear" as never }), /portraitsFromImages: expected fill to be one of edge, mirror, blur, mean, got 'smear'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detectFacesBatch() and portraitsFromImages() leave tf.memory().numTensors unchanged across repeated calls", async () => {
  await engine();
  const px = await portraits();
  const imgs = [0, 1, 2].map((i) => ({ data: px.subarray(i * BYTES, (i + 1) * BYTES), width: PORTRAIT_WIDTH, height: PORTRAIT_HEIGHT }));
  await detectFacesBatch(imgs, { batchSize: 2 });
  await portraitsFromImages([PHOTOS[3]], { detector: "tiny" });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    await detectFacesBatch(imgs, { batchSize: 2, detector: "ssd" });
    await detectFacesBatch(imgs, { batchSize: 2, detector: "tiny" });
    await portraitsFromImages([PHOTOS[3], PHOTOS[2]], { detector: "tiny", batchSize: 1 });
  }
  assert.equal(tf.memory().numTensors, before);
});
