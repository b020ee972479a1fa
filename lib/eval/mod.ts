/**
 * Evaluation of classifiers: scikit-learn-style classification reports
 * (text, polars frame, test_metrics.json), confusion matrices, top-1
 * calibration (ECE), bootstrap intervals (error bars), subgroup accuracy
 * (bias checks) and the worst subgroup, the most confident mistakes, and
 * Vega-Lite charts for all of them plus learning curves and model comparisons. Pure functions over label arrays and n×k probabilities.
 *
 *   import { calibration, classificationReport, confusionChart, formatReport } from "./lib/eval/mod.ts";
 *   import { saveChart } from "./lib/viz/vega.ts";
 *   const r = classificationReport(yTrue, probs, HEADS.gender.labels);
 *   console.log(formatReport(r, "gender, test split"));
 *   await saveChart(confusionChart(r, "gender"), "checkpoints/exp/confusion_gender");
 *
 * Tests: deno test -A tests/eval/
 */
export {
  argmaxRows,
  type ClassificationReport,
  classificationReport,
  type ClassScores,
  formatReport,
  type HeadMetrics,
  type HeadMetricsExtras,
  metricsJson,
  type Mistake,
  reportFrame,
  worstMistakes,
} from "./report.ts";
export { type Calibration, calibration, type CalibrationBin } from "./calibration.ts";
export { subgroupAccuracy, WORST_SUBGROUP_MIN_ROWS, type WorstSubgroup, worstSubgroup } from "./subgroups.ts";
export {
  bootstrapFromPredictions,
  type BootstrapIntervals,
  bootstrapIntervals,
  type BootstrapOptions,
  bootstrapProportion,
  DEFAULT_BOOTSTRAP,
  formatInterval,
  formatIntervals,
  type Interval,
  quantileSorted,
} from "./bootstrap.ts";
export { comparisonChart, confusionChart, learningCurveChart, reliabilityChart } from "./charts.ts";
