#!/usr/bin/env python3
"""PyTorch reference for the reference CNN of FACTS.md (same network, batch, optimiser as bench/bench.ts).

Prints one JSON line: {"train_img_s": ..., "infer_img_s": ..., "threads": ..., "torch": ...}.
Needs PyTorch; on Debian/Ubuntu: apt-get install python3-torch  (run with /usr/bin/python3).
"""
import argparse, json, statistics, sys, time

try:
    import torch
    import torch.nn as nn
except ImportError:
    print(json.dumps({"error": "PyTorch is not installed: apt-get install python3-torch (Debian) and run with /usr/bin/python3"}))
    sys.exit(0)

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--channels-last", action="store_true", default=True)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

net = nn.Sequential(
    nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
    nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
    nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
    nn.Conv2d(128, 256, 3, stride=2, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 2),
)
x = torch.randn(a.batch, 3, 108, 84)
y = torch.randint(0, 2, (a.batch,))
if a.channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

def train_step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()

def timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

net.train()
t_train = timed(train_step, a.steps, a.warmup)
net.eval()
with torch.no_grad():
    t_inf = timed(lambda: net(x), a.steps, a.warmup)
print(json.dumps({"train_img_s": a.batch / t_train, "infer_img_s": a.batch / t_inf, "threads": torch.get_num_threads(),
                  "torch": torch.__version__, "channels_last": a.channels_last}))
