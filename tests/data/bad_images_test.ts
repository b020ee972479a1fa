// The bad-image list (lib/data/bad_images.ts): one reader and one default path for split, train, GAN, demo, notebooks.
import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultBadImagesPath, loadExclusion } from "../../lib/data/bad_images.ts";
import { withTempDir } from "../_fixtures.ts";

Deno.test("loadExclusion() reads a given list, refuses a given list that does not exist unless optional, and without one falls back to the exploration's default path", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "bad.csv");
    await Deno.writeTextFile(p, "file,image_index,reason,score,detail\nTiny_Portrait_000003.png,3,blank,1.0,\nTiny_Portrait_000009.png,9,non_face,2.0,x\n");
    const got = await loadExclusion("any", p);
    assert.deepEqual([...got.exclude].sort(), [3, 9]);
    assert.match(got.note, /leaving out 2 flagged images listed in .*bad\.csv/);
    await assert.rejects(loadExclusion("any", join(dir, "typo.csv")), /bad-image list .*typo\.csv does not exist/);
    assert.equal((await loadExclusion("any", join(dir, "typo.csv"), { optional: true })).exclude.size, 0);
    const none = await loadExclusion(`no-such-dataset-${Date.now()}`);
    assert.equal(none.exclude.size, 0);
    assert.equal(none.path, defaultBadImagesPath(none.path.split("/")[2]));
    assert.match(none.note, /run deno task explore first/);
  });
});
