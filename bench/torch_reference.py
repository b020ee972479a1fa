#!/usr/bin/env python3
"""PyTorch twins of the networks bench/bench.ts measures on tfjs: same layers, batch, optimiser and loss.

  /usr/bin/python3 bench/torch_reference.py --model ref|compact_cnn|gan_step|face_resnet
      [--batch N] [--steps N] [--warmup N] [--threads N] [--count-only]

  ref          the reference CNN of FACTS.md (bench/reference_cnn.ts); Adam 1e-3, cross-entropy. Batch 64.
  compact_cnn  lib/models/compact_cnn.ts (default config) + a linear gender head (2 classes), as
               createClassifier builds it; Adam 1e-3, cross-entropy + the conv kernels' L2 term (1e-4). Batch 64.
  gan_step     lib/gan/nets.ts (DEFAULT_GAN_CONFIG, unconditional: PacGAN's packs of PACK samples, the minibatch
               standard deviation over groups of MBSTD_GROUP packs) with lib/gan/steps.ts' step as gan:train runs it: one discriminator step (hinge loss),
               one generator step (−D(G(z)) + the mode-seeking term of gan:train's default weight, MODE_SEEKING, in
               its default form and region, MODE_SEEKING_FORM and MODE_SEEKING_REGION), with gan:train's default augmentation, AUGMENT (none;
               True: DiffAugment color,translation,cutout on both), Adam 2e-4 (β 0.5, 0.999), then the generator's
               weight average.
               Batch 32. "Inference" is the generator's forward pass (running batch-norm statistics).
               A variant, as bench/project_nets.ts reads it: env GAN_MODEL (JSON; pack, mbstdGroup) and GAN_TRAIN
               (JSON; modeSeeking, modeSeekingForm, modeSeekingRegion image|face, modeSeekingPool); other fields are
               an error.
  face_resnet  lib/models/face_resnet.ts (face-api's ResNet-34-like recognition net: the portrait cut and
               resized to 150×150 inside the net, 128-D embedding, random weights) + dropout 0.2 + a linear
               gender head; Adam 1e-3 on the head and 1e-4 on the backbone, label smoothing 0.1. Batch 32.

Prints one JSON line: {"model", "batch", "train_img_s", "infer_img_s", "params", "trainable_params", "threads",
"torch", "channels_last", "blas", "omp_wait_policy"}; with --count-only no timing. `params` counts what tfjs' countParams() counts:
every weight, batch norms' running mean and variance included (PyTorch keeps those as buffers).
A timing is the median of --steps steps after --warmup untimed ones.
Needs PyTorch; on Debian/Ubuntu: apt-get install python3-torch  (run with /usr/bin/python3). Without it the
JSON line is {"error": ...}. Debian's PyTorch 1.13 runs Linear and ConvTranspose2d through the system BLAS, which is
netlib's reference BLAS unless OpenBLAS is installed ("blas": "reference"): the GAN step then runs ~3.5× slower (its
generator forward ~10×, measured at batch 4 on one thread); apt-get install libopenblas0-pthread, or put an
OpenBLAS libblas.so.3 on LD_LIBRARY_PATH, before comparing gan_step.
"""
import argparse, json, os, random, statistics, sys, time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print(json.dumps({"error": "PyTorch is not installed: apt-get install python3-torch (Debian) and run with /usr/bin/python3"}))
    sys.exit(0)

MODELS = ["ref", "compact_cnn", "gan_step", "face_resnet"]
DEFAULT_BATCH = {"ref": 64, "compact_cnn": 64, "gan_step": 32, "face_resnet": 32}
H, W = 108, 84
MODE_SEEKING = 1.0  # gan:train's default --mode-seeking (lib/gan/train.ts DEFAULT_GAN_TRAIN.modeSeeking)
MODE_SEEKING_FORM = "all"  # its default --mode-seeking-form (DEFAULT_GAN_TRAIN.modeSeekingForm)
MODE_SEEKING_REGION = "face"  # its default --mode-seeking-region (MODE_SEEKING_FACE; image: the whole image)
MODE_SEEKING_FACE = (17, 35, 50, 50)  # lib/gan/train.ts MODE_SEEKING_FACE (x, y, width, height)
MODE_SEEKING_REGIONS = {"image": None, "face": MODE_SEEKING_FACE}  # --mode-seeking-region's pixel regions
MBSTD_GROUP = 4  # the discriminator's default --mbstd-group (lib/gan/nets.ts DEFAULT_GAN_CONFIG.mbstdGroup)
PACK = 2  # its default --pack, unconditional (lib/gan/train.ts DEFAULT_GAN_TRAIN.model.pack)
AUGMENT = False  # gan:train's default --augment: none (DEFAULT_GAN_TRAIN.augment "")
# tfjs batch norm: epsilon 1e-3; momentum m there is 1 − m here (tfjs default 0.99, the GAN's generator 0.9).
BN_EPS = 1e-3


def bn(c, tf_momentum=0.99):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=1 - tf_momentum)


def count_params(*modules):
    """(all weights incl. batch-norm running statistics, trainable weights) — tfjs' countParams() and trainableWeights."""
    total = trainable = 0
    for m in modules:
        for p in m.parameters():
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        total += sum(b.numel() for n, b in m.named_buffers() if n.endswith(("running_mean", "running_var")))
    return total, trainable


# ------------------------------------------------------------------ reference CNN (bench/reference_cnn.ts)

def reference_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), bn(32), nn.ReLU(),  # 54×42×32
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # 27×21×64
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),  # 14×11×128
        nn.Conv2d(128, 256, 3, stride=2, padding=1), nn.ReLU(),  # 7×6×256
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 2),
    )


# ------------------------------------------------------------------ compact CNN (lib/models/compact_cnn.ts)
# tfjs "same" padding with stride 2 pads the odd remainder at the bottom/right; padding=1 here gives the same
# output sizes (108×84 → 54×42 → 27×21 → 14×11 → 7×6) and the same multiply-adds.

def conv_bn_relu(cin, cout, stride, relu=True):
    layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), bn(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class CompactBlock(nn.Module):
    """relu(x + bn(conv(relu(bn(conv(x))))))."""

    def __init__(self, c):
        super().__init__()
        self.a, self.b = conv_bn_relu(c, c, 1), conv_bn_relu(c, c, 1, relu=False)

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class CompactCnn(nn.Module):
    """DEFAULT_COMPACT_CNN_CONFIG: widths 32,64,128,256, 1 block per stage, dropout 0.2, L2 1e-4; + linear head."""

    def __init__(self, widths=(32, 64, 128, 256), blocks=1, dropout=0.2, classes=2, weight_decay=1e-4):
        super().__init__()
        layers = [conv_bn_relu(3, widths[0], 2)]  # stem 54×42
        for cin, w in zip(widths[:-1], widths[1:]):
            layers.append(conv_bn_relu(cin, w, 2))  # 27×21 → 14×11 → 7×6
            layers += [CompactBlock(w) for _ in range(blocks)]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], classes)  # "gender"
        self.weight_decay = weight_decay

    def forward(self, x):
        return self.head(self.dropout(self.features(x).mean((2, 3))))

    def regularization(self):
        """tfjs' l2 kernel regularizer: λ·Σw² over the conv kernels, added to the loss."""
        return self.weight_decay * sum((m.weight ** 2).sum() for m in self.modules() if isinstance(m, nn.Conv2d))


# ------------------------------------------------------------------ face ResNet (lib/models/face_resnet.ts)

# faceResnetCropBox(DEFAULT_FACE_RESNET_CONFIG) on 108×84 ("aligned"), REFERENCE_NORMALIZATION, FACE_API_MEAN_RGB.
FACE_BOX = (0.323220, 0.202400, 0.784917, 0.797600)
NORM_MEAN, NORM_STD = (0.5163, 0.412, 0.3578), (0.2682, 0.2379, 0.2292)
FACE_API_MEAN_RGB = (122.782, 117.001, 104.298)


class FaceResnetInput(nn.Module):
    """[b,3,108,84] normalised → pixels → bilinear crop-and-resize to [b,3,150,150] (outside = 0) → (pixel − mean RGB)/255."""

    def __init__(self, box=FACE_BOX, size=150):
        super().__init__()
        y1, x1, y2, x2 = box
        # cropAndResize samples pixel centres y1·(H−1) … y2·(H−1); grid_sample(align_corners=True) maps −1…1 to 0…H−1.
        ys, xs = torch.linspace(y1, y2, size) * 2 - 1, torch.linspace(x1, x2, size) * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self.register_buffer("grid", torch.stack([gx, gy], -1)[None], persistent=False)
        self.register_buffer("scale", torch.tensor(NORM_STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("shift", torch.tensor(NORM_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("mean_rgb", torch.tensor(FACE_API_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        pixels = x * self.scale + self.shift
        face = F.grid_sample(pixels, self.grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True)
        return (face - self.mean_rgb) / 255


class Residual(nn.Module):
    """relu(x + conv2(relu(conv1(x)))), both 3×3 same with bias (face-api's scale folded in)."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ResidualDown(nn.Module):
    """relu(avgpool2(x) ⧺ zero channels + pad(conv2(relu(conv1 3×3/2 valid(x))))), face-api's residualDown."""

    def __init__(self, cin, cout):
        super().__init__()
        self.extra = cout - cin
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, stride=2), nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        s = F.avg_pool2d(x, 2, 2)
        if self.extra:
            s = F.pad(s, (0, 0, 0, 0, 0, self.extra))
        dh, dw = s.shape[2] - y.shape[2], s.shape[3] - y.shape[3]
        if dh or dw:
            y = F.pad(y, (0, dw, 0, dh))
        return F.relu(y + s)


class FaceResnet(nn.Module):
    """face_input → conv 7×7/2 valid + relu → max pool 3/2 → residual stages → GAP → fc 256→128 → dropout → head."""

    def __init__(self, classes=2, head_dropout=0.2, channels_last=True):
        super().__init__()
        self.input = FaceResnetInput()
        self.channels_last = channels_last
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 32, 7, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2),  # 72×72 → 35×35
            Residual(32), Residual(32), Residual(32),
            ResidualDown(32, 64), Residual(64), Residual(64), Residual(64),  # 17×17
            ResidualDown(64, 128), Residual(128), Residual(128),  # 8×8
            ResidualDown(128, 256), Residual(256), Residual(256),  # 4×4
            ResidualDown(256, 256),  # 2×2
        )
        self.fc = nn.Linear(256, 128, bias=False)
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(128, classes)  # "gender"

    def forward(self, x):
        face = self.input(x)
        if self.channels_last:
            face = face.contiguous(memory_format=torch.channels_last)
        return self.head(self.dropout(self.fc(self.backbone(face).mean((2, 3)))))


# ------------------------------------------------------------------ GAN (lib/gan/nets.ts, DEFAULT_GAN_CONFIG)

class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(1, keepdim=True) + 1e-8)


def bn_relu(c):
    return [bn(c, 0.9), nn.ReLU()]


class Synthesis(nn.Module):
    """w → dense 14×11×128 → BN relu → conv 3×3 → [4×4/2 transposed conv → BN relu] ×3 (+ conv at 28×22) → conv → tanh → crop 108×84."""

    def __init__(self, w_dim=128, widths=(128, 64, 32, 16)):
        super().__init__()
        c0, c1, c2, c3 = widths
        self.c0 = c0
        self.const = nn.Linear(w_dim, 14 * 11 * c0, bias=False)
        self.net = nn.Sequential(
            *bn_relu(c0),
            nn.Conv2d(c0, c0, 3, padding=1, bias=False), *bn_relu(c0),  # base_conv
            nn.ConvTranspose2d(c0, c1, 4, stride=2, padding=1, bias=False), *bn_relu(c1),  # 28×22
            nn.Conv2d(c1, c1, 3, padding=1, bias=False), *bn_relu(c1),  # up1_conv2
            nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1, bias=False), *bn_relu(c2),  # 56×44
            nn.ConvTranspose2d(c2, c3, 4, stride=2, padding=1, bias=False), *bn_relu(c3),  # 112×88
            nn.Conv2d(c3, 3, 3, padding=1), nn.Tanh(),
        )

    def forward(self, w):
        g = self.const(w).view(-1, self.c0, 14, 11)
        return self.net(g)[:, :, 2:-2, 2:-2]  # centre crop 112×88 → 108×84


def mapping_net(latent=128, w_dim=128, layers=2):
    mods, d = [PixelNorm()], latent
    for _ in range(layers):
        mods += [nn.Linear(d, w_dim), nn.LeakyReLU(0.2)]
        d = w_dim
    return nn.Sequential(*mods)


class MinibatchStd(nn.Module):
    """lib/gan/nets.ts MinibatchStd on flat features [b, f]: groups of g (the largest divisor of b not above the
    group size; sample i in group i mod b/g), the std of each feature across a group, averaged → [b, 1]."""

    def __init__(self, group):
        super().__init__()
        self.group = group

    def forward(self, x):
        b, f = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.view(g, b // g, f)
        std = ((y - y.mean(0, keepdim=True)) ** 2).mean(0).add(1e-8).sqrt()  # [b/g, f]
        return std.mean(1, keepdim=True).repeat(g, 1)


class Discriminator(nn.Module):
    """stem → strided convs to 7×6 → flatten → dense [+ dense(minibatch std), no bias] → leaky ReLU → score."""

    def __init__(self, widths=(16, 32, 64, 128, 256), mbstd_group=MBSTD_GROUP, pack=1):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2)
        self.pack = pack
        mods = [nn.Conv2d(3 * pack, widths[0], 3, padding=1), lrelu()]  # d_stem 108×84
        for i, (cin, c) in enumerate(zip(widths[:-1], widths[1:])):
            mods += [nn.Conv2d(cin, c, 3, stride=2, padding=1), lrelu()]  # 54×42, 27×21, 14×11, 7×6
            if i in (1, 2):
                mods += [nn.Conv2d(c, c, 3, padding=1), lrelu()]
        self.convs = nn.Sequential(*mods, nn.Flatten())
        self.features = nn.Linear(7 * 6 * widths[-1], widths[-1])
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group > 0 else None
        self.from_std = nn.Linear(1, widths[-1], bias=False) if mbstd_group > 0 else None
        self.score = nn.Linear(widths[-1], 1)

    def forward(self, x):
        if self.pack > 1:  # lib/gan/nets.ts packSamples: pack j holds samples j, j + b/m, … on its channels
            b, c, h, w = x.shape
            layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            x = x.reshape(self.pack, b // self.pack, c, h, w).transpose(0, 1).reshape(b // self.pack, self.pack * c, h, w)
            x = x.contiguous(memory_format=layout)
        flat = self.convs(x)
        pre = self.features(flat)
        if self.mbstd is not None:
            pre = pre + self.from_std(self.mbstd(flat))
        return self.score(F.leaky_relu(pre, 0.2))


def diff_augment(x, rng):
    """lib/gan/steps.ts' diffAugment, policy color,translation,cutout, the same way (per-sample slices, a cutout mask)."""
    b, c, h, w = x.shape
    per = lambda lo, hi: torch.tensor([rng.uniform(lo, hi) for _ in range(b)], dtype=x.dtype).view(b, 1, 1, 1)
    x = x + per(-0.5, 0.5)  # brightness
    gray = x.mean(1, keepdim=True)
    x = (x - gray) * per(0, 2) + gray  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * per(0.5, 1.5) + mean  # contrast
    sy, sx = round(h / 8), round(w / 8)
    padded = F.pad(x, (sx, sx, sy, sy))
    parts = []
    for i in range(b):
        y0, x0 = sy + rng.randint(-sy, sy), sx + rng.randint(-sx, sx)
        parts.append(padded[i:i + 1, :, y0:y0 + h, x0:x0 + w])
    x = torch.cat(parts, 0)  # translation
    ch, cw = round(h / 2), round(w / 2)
    mask = torch.ones(b, 1, h, w, dtype=x.dtype)
    for i in range(b):
        y0, x0 = rng.randint(0, h - ch), rng.randint(0, w - cw)
        mask[i, :, y0:y0 + ch, x0:x0 + cw] = 0
    return x * mask  # cutout


def mode_seeking_term(fake, z, form=MODE_SEEKING_FORM, region=MODE_SEEKING_REGIONS[MODE_SEEKING_REGION], pool=1):
    """lib/gan/steps.ts modeSeekingTerm of `form` in `region` (x, y, width, height; None = the whole image), averaged
    over pool×pool pixels, on an NCHW batch."""
    if region is not None:
        x, y, w, h = region
        fake = fake[:, :, y:y + h, x:x + w]
    if pool > 1:
        fake = F.avg_pool2d(fake, pool)
    n = fake.shape[0]
    if form == "all":  # every pair i < j, root-mean-square distances from one Gram matrix per side
        def rms(t):
            flat = t.reshape(n, -1)
            sq = (flat * flat).sum(1, keepdim=True)
            d2 = F.relu(sq + sq.t() - 2 * flat @ flat.t())
            return (d2 / flat.shape[1] + 1e-10).sqrt()
        i, j = torch.triu_indices(n, n, 1)
        d = rms(fake)[i, j] / rms(z)[i, j]
        return (1 / (d + 1e-5)).mean()
    h = n // 2  # the batch's halves paired
    df, dz = (fake[:h] - fake[h:2 * h]).abs(), (z[:h] - z[h:2 * h]).abs()
    if form == "batch":
        return 1 / (df.mean() / dz.mean() + 1e-5)
    d = df.reshape(h, -1).mean(1) / dz.reshape(h, -1).mean(1)  # "pairs": each pair's own ratio
    return (1 / (d + 1e-5)).mean()


# ------------------------------------------------------------------ timing

def blas_library():
    """The BLAS this process's PyTorch calls for Linear layers and ConvTranspose2d (1.13 runs those through BLAS,
    not oneDNN): "openblas", "mkl", "blis", "reference" (Debian's default libblas3, netlib: several times slower
    on the GAN) or the library's path; "" when it cannot tell."""
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "/" in line and ("blas" in line.lower() or "mkl" in line.lower())})
    except OSError:
        return ""
    for kind in ("openblas", "mkl", "blis"):
        if any(kind in os.path.basename(p).lower() or f"/{kind}" in p.lower() for p in paths):
            return kind
    if any("/blas/libblas.so.3" in p for p in paths):
        return "reference"
    return ", ".join(paths)



def timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def to_cl(m, on):
    return m.to(memory_format=torch.channels_last) if on else m


def classifier(a, net, lr_groups, label_smoothing=0.0):
    """A classifier's training step as lib/train/trainer.ts takes it (Adam, cross-entropy + regularisation) and its forward pass."""
    x = torch.randn(a.batch, 3, H, W)
    y = torch.arange(a.batch) % 2
    if a.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(lr_groups)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    reg = getattr(net, "regularization", None)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        if reg:
            loss = loss + reg()
        loss.backward()
        opt.step()
        return loss.item()

    def infer():
        net.eval()
        with torch.no_grad():
            out = net(x)
        net.train()
        return out

    net.train()
    return train_step, infer


def gan_variant(env, allowed):
    """The JSON object in env variable `env` (a gan_step variant, as bench/project_nets.ts reads it); a field outside
    `allowed` ends the run with an error line."""
    v = json.loads(os.environ.get(env) or "{}")
    bad = [k for k in v if k not in allowed]
    if bad:
        variant_error(f"{env}: {', '.join(bad)} not in this PyTorch twin (it takes {', '.join(allowed)})")
    return v


def variant_error(message):
    """Ends the run with the error line bench.ts reads."""
    print(json.dumps({"error": message}))
    sys.exit(0)


def build(a):
    """(train_step, infer, params, trainable, detail) for --model."""
    if a.model in ("ref", "compact_cnn"):
        net = to_cl(reference_cnn() if a.model == "ref" else CompactCnn(), a.channels_last)
        total, trainable = count_params(net)
        return (*classifier(a, net, net.parameters()), total, trainable, None)
    if a.model == "face_resnet":
        net = to_cl(FaceResnet(channels_last=a.channels_last), a.channels_last)
        total, trainable = count_params(net)
        head = list(net.head.parameters())
        backbone = [p for n, p in net.named_parameters() if not n.startswith("head.")]
        groups = [{"params": head, "lr": 1e-3}, {"params": backbone, "lr": 1e-4}]  # backboneLrMult 0.1
        return (*classifier(a, net, groups, label_smoothing=0.1), total, trainable, None)
    # gan_step
    model, train = gan_variant("GAN_MODEL", ["pack", "mbstdGroup"]), gan_variant("GAN_TRAIN", ["modeSeeking", "modeSeekingForm", "modeSeekingRegion", "modeSeekingPool"])
    weight = train.get("modeSeeking", MODE_SEEKING)
    form = train.get("modeSeekingForm", MODE_SEEKING_FORM)
    region_name = train.get("modeSeekingRegion", MODE_SEEKING_REGION)
    pool = train.get("modeSeekingPool", 1)
    for field, value, known in (("modeSeekingForm", form, ("batch", "pairs", "all")), ("modeSeekingRegion", region_name, tuple(MODE_SEEKING_REGIONS))):
        if value not in known:
            variant_error(f"GAN_TRAIN: {field} {value} is not one of {', '.join(known)}")
    if not (isinstance(pool, int) and pool >= 1):
        variant_error(f"GAN_TRAIN: modeSeekingPool {pool!r} is not a whole number ≥ 1")
    if not (isinstance(weight, (int, float)) and weight >= 0):
        variant_error(f"GAN_TRAIN: modeSeeking {weight!r} is not a number ≥ 0")
    region = MODE_SEEKING_REGIONS[region_name]
    disc = Discriminator(mbstd_group=model.get("mbstdGroup", MBSTD_GROUP), pack=model.get("pack", PACK))
    mapping, synthesis, disc = mapping_net(), to_cl(Synthesis(), a.channels_last), to_cl(disc, a.channels_last)
    gen = nn.Sequential(mapping, synthesis)
    ema = [t.detach().clone() for t in list(gen.parameters()) + list(gen.buffers()) if t.is_floating_point()]
    g_total, g_trainable = count_params(mapping, synthesis)
    d_total, d_trainable = count_params(disc)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    real = torch.rand(a.batch, 3, H, W) * 2 - 1
    if a.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    z = torch.randn(a.batch, 128)
    rng = random.Random(1)
    beta = 0.5 ** (a.batch / 1000)  # emaKimg 1

    def train_step():
        gen.train()
        # Discriminator step: G runs forward (batch statistics, running statistics updated), no gradient into G.
        with torch.no_grad():
            fake = gen(z)
        aug = (lambda x: diff_augment(x, rng)) if AUGMENT else (lambda x: x)
        loss_d = F.relu(1 - disc(aug(real))).mean() + F.relu(1 + disc(aug(fake))).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # Generator step: gradient through D to the image, none for D's weights.
        disc.requires_grad_(False)
        fake = gen(z)
        loss_g = -disc(aug(fake)).mean()
        if weight > 0:
            loss_g = loss_g + weight * mode_seeking_term(fake, z, form, region, pool)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        disc.requires_grad_(True)
        with torch.no_grad():  # the generator's weight average (updateEma), every weight
            cur = [t for t in list(gen.parameters()) + list(gen.buffers()) if t.is_floating_point()]
            for e, c in zip(ema, cur):
                e.mul_(beta).add_(c, alpha=1 - beta)
        return loss_d.item() + loss_g.item()

    def infer():
        gen.eval()
        with torch.no_grad():
            return gen(z)

    return train_step, infer, g_total + d_total, g_trainable + d_trainable, {
        "generator": g_total, "discriminator": d_total}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=MODELS, default="ref")
    p.add_argument("--batch", type=int, default=0, help="batch size (0 = the network's training batch)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--count-only", action="store_true", help="print the parameter counts only")
    a = p.parse_args()
    a.batch = a.batch or DEFAULT_BATCH[a.model]
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    train_step, infer, params, trainable, detail = build(a)
    out = {"model": a.model, "batch": a.batch, "params": params, "trainable_params": trainable}
    if detail:
        out["params_detail"] = detail
    if not a.count_only:
        t_train = timed(train_step, a.steps, a.warmup)
        t_inf = timed(infer, a.steps, a.warmup)
        out.update({"train_img_s": a.batch / t_train, "infer_img_s": a.batch / t_inf})
    out.update({"threads": torch.get_num_threads(), "torch": torch.__version__, "channels_last": a.channels_last,
                "blas": blas_library(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
