"""PyTorch twin of examples/char_lm.py: the same model, data, hyperparameters and held-out evaluation, in torch.

    python benchmarks/char_lm_torch.py --text ../shared/data/tinyshakespeare/input.txt --minutes 5 [--threads 2]

What is shared with the minirnn example, so that the only difference is the framework:
  * the data: the same ``split_text`` (last 10% held out), the same vocabulary (``Vocab.build`` over the training
    text, plus ``<unk>``), the same ``stream_batches`` (``batch`` parallel streams walked in chunks of
    ``seq-len``), and the same per-pass random offsets (one NumPy Generator seeded with ``--seed``, drawn
    in the same order);
  * the model: Embedding(V, 64) -> LSTM(64, 256) -> Linear(256, V), starting from the very same weights: the
    example's CharLM is built from the same seed (its draws come before the offsets', as in the example) and
    its state_dict is loaded into the torch model unchanged (``--torch-init`` uses torch's own initialisation);
  * training: truncated BPTT with the state carried between chunks and detached (cut), cross-entropy, global
    gradient-norm clipping at 5, Adam (lr 3e-3); the budget is wall time of training steps only
    (evaluation excluded), or ``--max-steps``;
  * evaluation: the same held-out pass (32 streams from a zero state, chunks of ``seq-len``), in nats and bits
    per character.

The runs then differ only by floating-point rounding (and by how many steps each framework fits in the time
budget). Prints progress lines like the example's; the last line is the final held-out loss.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from minirnn.data import Vocab, split_text, stream_batches  # noqa: E402


def _example_module():
    """examples/char_lm.py as a module (its CharLM gives the initial weights)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "char_lm.py")
    spec = importlib.util.spec_from_file_location("_char_lm_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

LN2 = math.log(2.0)


class CharLM(nn.Module):
    """x (T, B) indices, state or None -> logits (T, B, V), new state."""

    def __init__(self, vocab_size: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, layers)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, state = self.lstm(self.embedding(x), state)
        return self.fc(out), state


@torch.no_grad()
def heldout_loss(model: CharLM, ids: np.ndarray, batch: int = 32, seq_len: int = 100) -> float:
    """Mean next-character cross-entropy (nats); the same streams as examples/char_lm.py's heldout_loss."""
    model.eval()
    batch = max(1, min(batch, (len(ids) - 1) // seq_len))
    total, count, state = 0.0, 0, None
    for x, y in stream_batches(ids, batch, seq_len):
        logits, state = model(torch.from_numpy(np.ascontiguousarray(x.T)), state)
        total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             torch.from_numpy(np.ascontiguousarray(y.T)).reshape(-1),
                                             reduction="sum").item()
        count += y.size
    model.train()
    return total / count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", required=True, help="a UTF-8 text file")
    ap.add_argument("--minutes", type=float, default=5.0, help="training wall time (evaluation not counted)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many chunks (default: no limit)")
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64, help="parallel streams per chunk")
    ap.add_argument("--seq-len", type=int, default=100, help="truncated-BPTT chunk length")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clip")
    ap.add_argument("--holdout", type=float, default=0.1, help="fraction held out at the end of the text")
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds of training between held-out checks")
    ap.add_argument("--log-every", type=float, default=15.0, help="seconds between progress lines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-init", action="store_true", help="torch's own initial weights instead of the example's")
    args = ap.parse_args(argv)
    if args.minutes < 0 or (args.max_steps is not None and args.max_steps < 0):
        ap.error("--minutes and --max-steps must not be negative")
    if not os.path.exists(args.text):
        ap.error(f"no such file {args.text!r}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    train_text, held_text = split_text(text, args.holdout)
    vocab = Vocab.build([train_text], pad=None, unk="<unk>")
    train_ids, held_ids = vocab.encode(train_text), vocab.encode(held_text)
    if len(train_ids) < 2 * args.batch + 1:
        ap.error(f"the training text ({len(train_ids)} characters) is too short for --batch {args.batch}")
    model = CharLM(len(vocab), args.embed, args.hidden, args.layers)
    if not args.torch_init:      # the example's weights, drawn from rng exactly as the example draws them
        ours = _example_module().CharLM(len(vocab), args.embed, args.hidden, args.layers, rng=rng)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(text)} characters: "
          f"{len(train_ids)} train, {len(held_ids)} held out; vocabulary {len(vocab)}; batch {args.batch} x "
          f"{args.seq_len}", flush=True)

    budget = args.minutes * 60.0
    train_time = 0.0
    step = chars = 0
    last_log = last_eval = 0.0
    run_loss, run_n = 0.0, 0
    done = budget <= 0 or args.max_steps == 0
    while not done:
        offset = int(rng.integers(args.seq_len))       # the same draws as the example's (after the init's)
        state = None
        for x, y in stream_batches(train_ids, args.batch, args.seq_len, offset=offset):
            t0 = time.perf_counter()
            xt = torch.from_numpy(np.ascontiguousarray(x.T))
            yt = torch.from_numpy(np.ascontiguousarray(y.T))
            if state is not None:
                state = tuple(s.detach() for s in state)     # carried, but the backward pass stops here
            logits, state = model(xt, state)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), yt.reshape(-1))
            opt.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            if not (math.isfinite(loss.item()) and math.isfinite(norm.item())):
                print(f"error: training diverged at step {step} (loss {loss.item()}, gradient norm {norm.item()})",
                      file=sys.stderr)
                return 3
            opt.step()
            train_time += time.perf_counter() - t0
            step += 1
            chars += y.size
            run_loss += loss.item()
            run_n += 1
            done = train_time >= budget or (args.max_steps is not None and step >= args.max_steps)
            if train_time - last_log >= args.log_every or done:
                print(f"step {step:6d}  train loss {run_loss / run_n:.4f} nats  {chars / 1e6:.2f}M chars  "
                      f"{train_time:6.1f} s  {step * args.batch * args.seq_len / train_time:,.0f} chars/s",
                      flush=True)
                last_log, run_loss, run_n = train_time, 0.0, 0
            if train_time - last_eval >= args.eval_every and not done:
                held = heldout_loss(model, held_ids)
                print(f"step {step:6d}  held-out loss {held:.4f} nats  {held / LN2:.4f} bpc  "
                      f"({train_time:.1f} s of training)", flush=True)
                last_eval = train_time
            if done:
                break
    held = heldout_loss(model, held_ids)
    if not math.isfinite(held):
        print(f"error: the held-out loss is {held}", file=sys.stderr)
        return 3
    print(f"final held-out loss {held:.4f} nats, {held / LN2:.4f} bpc after {train_time:.1f} s of training "
          f"({step} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
