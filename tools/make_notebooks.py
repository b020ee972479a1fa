# Generates notebooks/*.ipynb (thin: they import lib/mod.ts). Run from notebooks/: python3 ../tools/make_notebooks.py
import json, sys
def nb(cells, path):
    out = []
    for kind, src in cells:
        c = {"cell_type": kind, "metadata": {}, "source": src.strip("\n").splitlines(keepends=True)}
        if kind == "code":
            c["execution_count"] = None; c["outputs"] = []
        out.append(c)
    doc = {"cells": out, "metadata": {"kernelspec": {"display_name": "Deno", "language": "typescript", "name": "deno"},
           "language_info": {"name": "typescript", "file_extension": ".ts", "mimetype": "text/x.typescript"}},
           "nbformat": 4, "nbformat_minor": 5}
    json.dump(doc, open(path, "w"), indent=1); open(path, "a").write("\n")

setup = '''
import * as tp from "../lib/mod.ts";
// TP_DATAROOT: a real Tiny Portraits folder; default: a small procedural set generated on first use.
const dataroot = Deno.env.get("TP_DATAROOT") ?? await tp.ensureProceduralDataset({ count: Number(Deno.env.get("TP_COUNT") ?? 800), seed: 1, dataDir: "../data" });
const outRoot = Deno.env.get("TP_OUT") ?? "../reports/notebooks";
const engine = await tp.initEngine();
console.log(`data: ${dataroot}\\nbackend: ${engine.backend} (${engine.reason})`);
'''

nb([
("markdown", '''
# 01 — Exploring Tiny Portraits

Size, classes, imbalance, missing values, pixel statistics and automatically detected outliers (non-face images,
duplicates, broken / blank / badly exposed images). Everything is computed by `lib/explore` in one pass over the
pixel cache; this notebook only shows the results. Set `TP_DATAROOT` to a real Tiny Portraits folder to explore it;
by default a small procedural set is generated.
'''),
("code", setup),
("code", '''
const r = await tp.runExploration({ dataroot, out: `${outRoot}/explore` });
const s = r.summary as Record<string, any>;
console.log(`${s.rows} rows, ${s.imagesFound} images found, ${s.imagesDecoded} decoded, ${s.unlistedFiles} files without a row`);
'''),
("markdown", "## Classes, imbalance and missing values"),
("code", '''
await tp.showTable(r.description.classCounts, { title: "Class counts and shares" });
await tp.showTable(r.description.imbalance, { title: "Imbalance (largest / smallest labelled class)" });
await tp.showTable(r.description.missing, { title: "Missing values (n/a)" });
await tp.showChart(r.charts.class_balance);
await tp.showChart(r.charts.missing_values);
'''),
("markdown", "## Gender × hair: the skew a classifier will learn from"),
("code", '''
await tp.showTable(r.description.genderByHairColor, { title: "Gender × hair colour" });
await tp.showTable(r.description.genderByHairType, { title: "Gender × hair type" });
await tp.showChart(r.charts.gender_x_hair_color);
await tp.showChart(r.charts.gender_x_hair_type);
'''),
("markdown", "## Pixel statistics\nPer-channel mean/std are the normalisation constants training uses. The mosaic shows the tails of each statistic."),
("code", '''
console.log("normalisation", JSON.stringify(r.normalization));
await tp.showChart(r.charts.pixel_stats);
if (r.files.extremes_mosaic) await tp.showImage(r.files.extremes_mosaic);
'''),
("markdown", "## Outliers\nEvery flagged image has a reason and a score; the list is `bad_images.csv`, which the split stage leaves out."),
("code", '''
console.log(JSON.stringify(s.flaggedByReason));
await tp.showChart(r.charts.outlier_reasons);
if (r.files.flagged_mosaic) await tp.showImage(r.files.flagged_mosaic);
if (r.groundTruth) {
  const g = r.groundTruth;
  console.log(`against the planted ground truth: precision ${g.precision.toFixed(3)}, recall ${g.recall.toFixed(3)}`);
  console.log("recall by kind", JSON.stringify(g.recallByKind));
}
'''),
], "01_explore.ipynb")

nb([
("markdown", '''
# 02 — Stratified splits

Train/val/test splits per task (70/15/15 by default), stratified so every class keeps its share in every split;
images flagged by the exploration (`bad_images.csv`) and undecodable ones are left out. The splits are written as CSV
(same header as the attributes file) and read back by training.
'''),
("code", setup),
("code", '''
const ds = await tp.openDataset({ dataroot });
const name = tp.datasetName(ds.layout);
const { exclude, note } = await tp.loadExclusion(name, `${outRoot}/explore/bad_images.csv`, { optional: true });
console.log(note);
console.log(`${ds.rows} rows, ${ds.goodRows.length} decodable, ${exclude.size} flagged as bad`);
const dir = Deno.env.get("TP_SPLIT_DIR") ?? `../assets/splits/${name}`;
'''),
("code", '''
const reports = [];
for (const task of tp.SPLIT_TASKS) {
  const { splits, created } = await tp.ensureSplits(ds.attrs, task, ds.goodRows, { dir, exclude, seed: 0, force: true, log: console.log });
  console.log(`${task}: train ${splits.train.length}, val ${splits.val.length}, test ${splits.test.length}${created ? " (written)" : ""}`);
  reports.push(tp.splitReport(ds.attrs, task, splits));
}
'''),
("markdown", "## Every class keeps its share in every split"),
("code", '''
for (const rep of reports) {
  await tp.showTable(rep, { maxRows: 60 });
  await tp.showChart(tp.splitShareChart(rep));
}
'''),
], "02_split.ipynb")

def classifier_nb(task, title, path, baseline):
    head = {"gender": "gender", "haircolor": "hair_color"}[task]
    cells = [
("markdown", f'''
# {title}

Trains the compact CNN (from scratch), the pretrained face-api ResNet (fine-tuned; the task's default recipe) and the
seconds-fast baseline (frozen face descriptors, cached once per dataset, with a small head), evaluates them on the
held-out test split (report with 95% bootstrap intervals, confusion matrix, calibration, subgroup accuracy, worst
mistakes), compares them, and predicts on photos from other sources (face found and re-framed first). Presets:
`TP_PRESET` (default `debug`, about a minute per model on 2 cores); `full` is the recipe chosen on real faces.
'''),
("code", setup + f'''
const preset = Deno.env.get("TP_PRESET") ?? "debug";
const ckpts = Deno.env.get("TP_CHECKPOINTS") ?? "../checkpoints";
const splitDir = Deno.env.get("TP_SPLIT_DIR");
const task = "{task}";
'''),
("markdown", "## Train the compact CNN and the fine-tuned ResNet"),
("code", '''
const runs: Record<string, any> = {};
const compare = { dataroot, task, preset, checkpointsDir: ckpts, splitDir, expPrefix: "nb" };
for (const model of ["compact_cnn", "face_resnet"]) {
  // The comparison's rules (lib/train/compare.ts): the recipe under the preset; short presets fine-tune the ResNet's last blocks.
  runs[model] = await tp.trainFresh(tp.comparisonConfig(compare, model));
  console.log(`${model}: best val macro-F1 ${runs[model].bestScore.toFixed(3)} at epoch ${runs[model].bestEpoch}, ${runs[model].params.toLocaleString("en")} parameters`);
  await tp.showImage(`${runs[model].runDir}/learning_curve.png`);
}
'''),
("markdown", "## The seconds-fast baseline: frozen face descriptors + a small head\nThe pretrained ResNet runs once over the dataset (aligned face and whole portrait); its 128-D descriptors are cached beside the pixel cache, and only a small head is trained, with its own defaults (no preset)."),
("code", '''
{
  const t0 = performance.now();
  runs.face_descriptors = await tp.trainFresh(tp.comparisonConfig(compare, "face_descriptors"));
  console.log(`face_descriptors: best val macro-F1 ${runs.face_descriptors.bestScore.toFixed(3)} at epoch ${runs.face_descriptors.bestEpoch}, ${((performance.now() - t0) / 1000).toFixed(1)} s (descriptor pass included when not cached)`);
}
'''),
("markdown", "## Evaluate on the held-out test split"),
("code", """
const evals: Record<string, any> = {};
for (const model of Object.keys(runs)) {
  const e = evals[model] = await tp.evaluateRun({ runDir: runs[model].runDir, ckpt: "best", split: "test", splitDir, quiet: true });
  console.log(`${model}:\\n${tp.formatReport(e.reports.HEAD, `${model}, test split`)}\\nexpected calibration error ${e.ece.HEAD.toFixed(4)}`);
  for (const [name, df] of Object.entries(e.subgroups)) if (name.startsWith("HEAD_by_")) await tp.showTable(df as any, { title: `${model}: accuracy by subgroup (${name})` });
  await tp.showImage(e.files.confusion_HEAD);
  await tp.showImage(e.files.reliability_HEAD);
  if (e.files.mistakes_HEAD) await tp.showImage(e.files.mistakes_HEAD);
}
""".replace("HEAD", head)),
]
    if baseline:
        cells += [
("markdown", "## An off-the-shelf baseline: face-api's own age/gender net, no training"),
("code", '''
evals.faceapi_agegender = await tp.evaluateRun({ runDir: `${ckpts}/faceapi_agegender`, ckpt: "best", split: "test", dataroot, splitDir, quiet: true });
console.log(tp.formatReport(evals.faceapi_agegender.reports.gender, "face-api age/gender net — test split"));
'''),
        ]
    cells += [
("markdown", "## Side by side"),
("code", """
const rows = Object.entries(evals).map(([model, e]) => ({
  model, label: "HEAD", accuracy: e.metrics.HEAD.accuracy, macro_f1: e.metrics.HEAD.macro_f1,
  accuracy_95: e.intervals.HEAD.accuracy.map((v: number) => v.toFixed(3)).join("–"), macro_f1_95: e.intervals.HEAD.macroF1.map((v: number) => v.toFixed(3)).join("–"),
  // face_descriptors trains on cached descriptors: its speed is not images through the network.
  eval_img_per_s: e.imgPerSec, train_img_per_s: model === "face_descriptors" ? null : runs[model]?.history.at(-1)?.img_per_s ?? null, params: runs[model]?.params ?? null,
}));
await tp.showTable(tp.pl.DataFrame(rows), { title: "Test split" });
await tp.showChart(tp.comparisonChart(rows.map((r) => ({ model: r.model, head: r.label, accuracy: r.accuracy, macro_f1: r.macro_f1 })), "Models on the test split"));
""".replace("HEAD", head)),
("markdown", "## Photos from other sources\nface-api's sample photos (shipped in node_modules): the face is found, re-framed like a Tiny Portrait, then classified."),
("code", '''
const images = Deno.env.get("TP_IMAGES") ?? tp.sampleImagesDir();
const pred = await tp.predictFolder({ runDir: runs.compact_cnn.runDir, images, ckpt: "best", quiet: true });
await tp.showTable(tp.pl.DataFrame(pred.rows));
if (pred.sheetPath) await tp.showImage(pred.sheetPath);
'''),
    ]
    nb(cells, path)

classifier_nb("gender", "03 — Gender classifier", "03_gender.ipynb", True)
classifier_nb("haircolor", "04 — Hair-colour classifier (5 classes)", "04_haircolor.ipynb", False)

nb([
("markdown", '''
# 05 — One multitask model: gender, hair colour and hair type

One shared backbone, three heads (`gender` 2, `hair_color` 5, `hair_type` 3). Unlike the reference solution, no row is
thrown away: missing labels (`n/a`) are masked in each head's loss, so every row teaches what it knows (gender is never
missing). Per-head class weights fight imbalance; loss weights default to gender 1, hair colour 1, hair type 0.5.
The model is put side by side with the single-task models of notebooks 03 and 04 (trained here if missing).
'''),
("code", setup + '''
const preset = Deno.env.get("TP_PRESET") ?? "debug";
const ckpts = Deno.env.get("TP_CHECKPOINTS") ?? "../checkpoints";
const splitDir = Deno.env.get("TP_SPLIT_DIR");
const exists = async (p: string) => { try { await Deno.stat(p); return true; } catch { return false; } };
'''),
("markdown", "## Train (or reuse) the three models"),
("code", '''
const runs: Record<string, any> = {};
for (const [name, task] of [["nb_gender_compact_cnn", "gender"], ["nb_haircolor_compact_cnn", "haircolor"], ["nb_multitask_compact_cnn", "multitask"]] as const) {
  const runDir = `${ckpts}/${name}`;
  if (task !== "multitask" && await exists(`${runDir}/models/best/model.json`)) {
    console.log(`${name}: reusing the run of notebook ${task === "gender" ? "03" : "04"}`);
    runs[task] = { runDir, params: JSON.parse(await Deno.readTextFile(`${runDir}/config.json`)).params, history: [] };
    continue;
  }
  runs[task] = await tp.trainFresh(tp.comparisonConfig({ dataroot, task, preset, checkpointsDir: ckpts, splitDir, expPrefix: "nb" }, "compact_cnn"));
  console.log(`${name}: best val macro-F1 ${runs[task].bestScore.toFixed(3)} (mean over heads) at epoch ${runs[task].bestEpoch}`);
}
await tp.showImage(`${runs.multitask.runDir}/learning_curve.png`);
// The seconds-fast baseline with the same three heads: frozen face descriptors (cached) + small heads.
{
  runs.multitask_face_descriptors = await tp.trainFresh(tp.comparisonConfig({ dataroot, task: "multitask", preset, checkpointsDir: ckpts, splitDir, expPrefix: "nb" }, "face_descriptors"));
}
'''),
("markdown", "## Evaluate every head on its test split (rows where that head's label is present)"),
("code", '''
const evals: Record<string, any> = {};
for (const task of Object.keys(runs)) evals[task] = await tp.evaluateRun({ runDir: runs[task].runDir, ckpt: "best", split: "test", splitDir, quiet: true });
for (const head of ["gender", "hair_color", "hair_type"]) {
  console.log(tp.formatReport(evals.multitask.reports[head], `multitask — ${head}`));
  await tp.showImage(evals.multitask.files[`confusion_${head}`]);
}
'''),
("markdown", "## Side by side with the single-task models"),
("code", '''
const rows = [];
for (const [task, e] of Object.entries(evals)) {
  for (const [head, m] of Object.entries(e.metrics as Record<string, any>)) {
    const model = task === "multitask" ? "multitask" : task === "multitask_face_descriptors" ? "multitask, frozen descriptors" : `single-task ${task}`;
    rows.push({ model, label: head, accuracy: m.accuracy, macro_f1: m.macro_f1, macro_f1_95: e.intervals[head].macroF1.map((v: number) => v.toFixed(3)).join("–"),
      eval_img_per_s: e.imgPerSec, params: runs[task].params });
  }
}
await tp.showTable(tp.pl.DataFrame(rows), { title: "Test split, per head" });
await tp.showChart(tp.comparisonChart(rows.map((r) => ({ model: r.model, head: r.label, accuracy: r.accuracy, macro_f1: r.macro_f1 })), "Multitask vs single-task models"));
'''),
("markdown", "## Predictions with one column pair per head"),
("code", '''
const pred = await tp.predictFolder({ runDir: runs.multitask.runDir, images: Deno.env.get("TP_IMAGES") ?? tp.sampleImagesDir(), ckpt: "best", quiet: true });
await tp.showTable(tp.pl.DataFrame(pred.rows));
if (pred.sheetPath) await tp.showImage(pred.sheetPath);
'''),
], "05_multitask.ipynb")

nb([
("markdown", '''
# 06 — Generating portraits from scratch: a GAN at 108×84

A generator (mapping network → 14×11 → three 4×4 transposed convolutions → 112×88 → centre crop 108×84) against a
discriminator (spectral normalisation off by default: `--spectral-norm`), hinge loss, DiffAugment (colour, translation, cutout) and an exponential
moving average of the generator weights. Everything lives in `lib/gan/nets.ts` and `lib/gan/train.ts`; this
notebook trains briefly, then shows the sample grid (fixed latents), an interpolation strip, the truncation trick and
the Fréchet descriptor distance (FDD: Fréchet distance between real and generated portraits in face-api's 128-D face
descriptor space) per snapshot. `TP_GAN_PRESET` picks the preset (`debug` seconds, `demo` minutes, `full` hours).
'''),
("code", setup + '''
const ckpts = Deno.env.get("TP_CHECKPOINTS") ?? "../checkpoints";
const preset = Deno.env.get("TP_GAN_PRESET") ?? (Deno.env.get("TP_PRESET") === "debug" ? "debug" : "demo");
'''),
("markdown", "## Train (a short run; `deno task gan:train` for long ones, with `--resume`)"),
("code", '''
const expName = `nb_gan_${preset}`;
await Deno.remove(`${ckpts}/${expName}`, { recursive: true }).catch(() => {});
const cfg = tp.resolveGanConfig({ dataroot, expName }, preset, { checkpointsDir: ckpts, quiet: true });
const run = await tp.ganTrainRun(cfg);
console.log(`${(run.state.imagesShown / 1000).toFixed(2)} kimg in ${(run.state.trainSeconds / 60).toFixed(1)} min; parameters`, run.params);
await tp.showTable(tp.pl.DataFrame(run.state.snapshots.map(({ kimg, train_seconds, loss_d, loss_g, fdd, img_per_s }) => ({ kimg, train_seconds, loss_d, loss_g, fdd, img_per_s }))), { title: "Snapshots" });
'''),
("markdown", "## Samples from fixed latents at the last snapshot (EMA generator)"),
("code", '''
await tp.showImage(`${run.runDir}/samples/grid-latest.png`);
'''),
("markdown", "## Seeds, truncation and interpolation\nSame seed → same image; ψ < 1 pulls w towards the mean face (less variety, fewer failures)."),
("code", '''
for (const trunc of [1, 0.5]) {
  const g = await tp.generateImages({ network: run.runDir, seeds: [85, 265, 297, 849], trunc, out: `${outRoot}/06_gan/trunc${trunc}`, interpSteps: trunc === 1 ? 8 : 0 });
  await tp.showImage(g.grid);
  if (g.interpolation) await tp.showImage(g.interpolation);
}
'''),
("markdown", "## Fréchet descriptor distance per snapshot (lower = closer to the real portraits)"),
("code", '''
await tp.showImage(`${run.runDir}/fdd.png`);
'''),
("markdown", "## Sanity of the metric: a real set against itself and against noise"),
("code", '''
const ds = await tp.openDataset({ dataroot, quiet: true });
const a = ds.goodRows.slice(0, 64), b = ds.goodRows.slice(64, 128);
const noise = new Uint8Array(64 * tp.IMAGE_BYTES).map(() => Math.floor(Math.random() * 256));
const sa = await tp.descriptorStats(ds.cache.pixels, a);
await tp.showTable(tp.pl.DataFrame([
  { pair: "real A vs real A", fdd: tp.frechetDistance(sa, sa) },
  { pair: "real A vs real B", fdd: tp.frechetDistance(sa, await tp.descriptorStats(ds.cache.pixels, b)) },
  { pair: "real A vs noise", fdd: tp.frechetDistance(sa, await tp.descriptorStats(noise, Array.from({ length: 64 }, (_, i) => i))) },
]));
'''),
], "06_gan.ipynb")
