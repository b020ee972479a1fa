// Label sampling for the synthetic Tiny Portraits: joint probabilities that reproduce the real
// dataset's label counts (shared/FACTS.md), and the hidden "true" look behind an `n/a` label.
//
// Assumptions (the real joint table is not published in full):
// - Gender x Hair_Color: blond, gray and bald use the published per-gender counts; the remaining
//   rows of each gender are split over n/a, black and brown in proportion to those three labels'
//   overall counts (i.e. independence of gender within {n/a, black, brown}).
// - Hair_Type given (gender, colour): Hair_Color bald -> Hair_Type bald 95%, n/a 5%. The other
//   bald Hair_Types (receding hair) come from men whose colour is gray or n/a. Among the rest,
//   women are 49% wavy / 18% straight / 33% n/a and men's shares are solved so that the overall
//   Hair_Type counts match FACTS.md in expectation.

import type { Rng } from "../../util/rng.ts";

export type Gender = "female" | "male";
export type HairColor = "black" | "brown" | "blond" | "gray" | "bald" | "n/a";
export type HairType = "straight" | "wavy" | "bald" | "n/a";

/** One row of Tiny_Portraits_Attributes.csv (without the index). */
export interface Labels {
  gender: Gender;
  hairColor: HairColor;
  hairType: HairType;
}

/** Colours the renderer can draw; `auburn` only appears behind an `n/a` label. */
export type DrawColor = "black" | "brown" | "blond" | "gray" | "auburn";

/** What is actually drawn: the labels with every `n/a` replaced by a hidden value. */
export interface Appearance {
  /** Colour of any hair drawn (top, side fringe, eyebrows' tint, facial hair). */
  color: DrawColor;
  texture: "straight" | "wavy";
  /** No hair on top (bald colour or bald type); a side fringe may remain. */
  bald: boolean;
  /** A hat covers the top of the head (only when Hair_Color is n/a: one reason it was not annotated). */
  hat: boolean;
}

// Published counts (FACTS.md).
const TOTAL = 134_734;
const GENDER = { female: 84_232, male: 50_502 };
const COLOR = {
  "n/a": 45_596,
  black: 32_577,
  brown: 29_526,
  blond: 20_530,
  gray: 4_680,
  bald: 1_825,
};
const COLOR_BY_GENDER_PUBLISHED = {
  female: { blond: 19_614, gray: 830, bald: 8 },
  male: { blond: 916, gray: 3_850, bald: 1_817 },
};
const TYPE = { "n/a": 56_766, wavy: 48_205, straight: 27_373, bald: 2_390 };

/** Expected count of each (gender, colour) cell. */
function colorCellsByGender(): Record<Gender, Record<HairColor, number>> {
  const rest = COLOR["n/a"] + COLOR.black + COLOR.brown;
  const out = {} as Record<Gender, Record<HairColor, number>>;
  for (const g of ["female", "male"] as const) {
    const pub = COLOR_BY_GENDER_PUBLISHED[g];
    const left = GENDER[g] - pub.blond - pub.gray - pub.bald;
    out[g] = {
      "n/a": (left * COLOR["n/a"]) / rest,
      black: (left * COLOR.black) / rest,
      brown: (left * COLOR.brown) / rest,
      blond: pub.blond,
      gray: pub.gray,
      bald: pub.bald,
    };
  }
  return out;
}

const CELLS = colorCellsByGender();

/** P(colour | gender), as weight tables. */
export const COLOR_GIVEN_GENDER: Record<Gender, Record<HairColor, number>> =
  CELLS;

const BALD_COLOR_TYPE: Record<HairType, number> = {
  bald: 0.95,
  "n/a": 0.05,
  wavy: 0,
  straight: 0,
};
const FEMALE_TYPE: Record<HairType, number> = {
  wavy: 0.49,
  straight: 0.18,
  "n/a": 0.33,
  bald: 0,
};

/** Hair_Type tables for men, solved from the marginals (see header). */
function maleTypeTables(): {
  plain: Record<HairType, number>;
  receding: Record<HairType, number>;
} {
  const m = CELLS.male;
  const balds = CELLS.female.bald + m.bald;
  const recedingPool = m.gray + m["n/a"];
  const recedingRows = TYPE.bald - balds * BALD_COLOR_TYPE.bald;
  const pBald = recedingRows / recedingPool;
  const femaleNonBald = GENDER.female - CELLS.female.bald;
  const maleNonBald = GENDER.male - m.bald - recedingRows;
  const wavy = (TYPE.wavy - femaleNonBald * FEMALE_TYPE.wavy) / maleNonBald;
  const straight = (TYPE.straight - femaleNonBald * FEMALE_TYPE.straight) /
    maleNonBald;
  const na = 1 - wavy - straight;
  const plain = { wavy, straight, "n/a": na, bald: 0 };
  const receding = {
    wavy: wavy * (1 - pBald),
    straight: straight * (1 - pBald),
    "n/a": na * (1 - pBald),
    bald: pBald,
  };
  return { plain, receding };
}

const MALE_TYPE = maleTypeTables();

/** P(type | gender, colour). */
export function typeTable(
  gender: Gender,
  color: HairColor,
): Record<HairType, number> {
  if (color === "bald") return BALD_COLOR_TYPE;
  if (gender === "female") return FEMALE_TYPE;
  return color === "gray" || color === "n/a"
    ? MALE_TYPE.receding
    : MALE_TYPE.plain;
}

/** Samples one row's labels from the joint distribution. */
export function sampleLabels(rng: Rng): Labels {
  const gender = rng.weighted(GENDER) as Gender;
  const hairColor = rng.weighted(COLOR_GIVEN_GENDER[gender]);
  const hairType = rng.weighted(typeTable(gender, hairColor));
  return { gender, hairColor, hairType };
}

/** Expected share of each label value under `sampleLabels` (for documentation and sanity checks). */
export function expectedShares(): {
  gender: Record<Gender, number>;
  hairColor: Record<HairColor, number>;
  hairType: Record<HairType, number>;
} {
  const gender = { female: GENDER.female / TOTAL, male: GENDER.male / TOTAL };
  const hairColor = {
    "n/a": 0,
    black: 0,
    brown: 0,
    blond: 0,
    gray: 0,
    bald: 0,
  } as Record<HairColor, number>;
  const hairType = { "n/a": 0, wavy: 0, straight: 0, bald: 0 } as Record<
    HairType,
    number
  >;
  for (const g of ["female", "male"] as const) {
    const cells = CELLS[g];
    for (const c of Object.keys(cells) as HairColor[]) {
      const p = cells[c] / TOTAL;
      hairColor[c] += p;
      const t = typeTable(g, c);
      const tsum = Object.values(t).reduce((a, b) => a + b, 0);
      for (const k of Object.keys(t) as HairType[]) {
        hairType[k] += (p * t[k]) / tsum;
      }
    }
  }
  return { gender, hairColor, hairType };
}

// Hidden colour behind Hair_Color n/a (n/a means "not annotated": red hair, dyed, hats, unclear).
const HIDDEN_COLOR: Record<Gender, Record<DrawColor, number>> = {
  female: { black: 0.3, brown: 0.38, blond: 0.16, auburn: 0.13, gray: 0.03 },
  male: { black: 0.42, brown: 0.38, blond: 0.06, auburn: 0.05, gray: 0.09 },
};
// Colour of the side fringe / beard of bald people.
const BALD_FRINGE: Record<DrawColor, number> = {
  gray: 0.5,
  black: 0.2,
  brown: 0.25,
  blond: 0.05,
  auburn: 0,
};
const HIDDEN_TEXTURE: Record<Gender, Record<"straight" | "wavy", number>> = {
  female: { wavy: 0.6, straight: 0.4 },
  male: { wavy: 0.35, straight: 0.65 },
};

/** Resolves every `n/a` into a hidden value so that something plausible is always drawn. */
export function resolveAppearance(labels: Labels, rng: Rng): Appearance {
  const bald = labels.hairColor === "bald" || labels.hairType === "bald";
  let color: DrawColor;
  if (labels.hairColor === "bald") color = rng.weighted(BALD_FRINGE);
  else if (labels.hairColor === "n/a") {
    color = rng.weighted(HIDDEN_COLOR[labels.gender]);
  } else color = labels.hairColor;
  const texture = labels.hairType === "straight" || labels.hairType === "wavy"
    ? labels.hairType
    : rng.weighted(HIDDEN_TEXTURE[labels.gender]);
  const hat = labels.hairColor === "n/a" && !bald && rng.chance(0.08);
  return { color, texture, bald, hat };
}
