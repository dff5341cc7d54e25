"""A character-level LSTM language model on any UTF-8 text, in minirnn (min-char-rnn grown up).

    python examples/char_lm.py --text ../shared/data/tinyshakespeare/input.txt --minutes 5 --save lm.npz
    python examples/char_lm.py --resume lm.npz --minutes 0 --sample 500 --temperature 0.8 --prompt "ROMEO:"
    python examples/char_lm.py --text input.txt --resume lm.npz --minutes 5 --save lm.npz    # train on

Model: Embedding(V, embed) -> LSTM(embed, hidden, layers) -> Linear(hidden, V); V = the characters of the training
text plus an unknown token (held-out or prompt characters never seen in training map to it).

Training: the last 10% of the text is held out. The rest is cut into ``batch`` parallel streams walked in chunks
of ``seq-len`` (100) characters: truncated BPTT. The LSTM state is carried from one chunk to the next (each
stream continues where it stopped) but cut there: the backward pass of a chunk stops at its first step.
Gradients are clipped to a global norm of ``clip``; Adam. Each pass over the text starts at a random offset.
Training runs for ``--minutes`` of wall time (evaluation excluded) or ``--max-steps`` chunks, whichever first.

Prints a progress line every ``--log-every`` seconds (training loss, characters per second) and the held-out loss
in nats and bits per character (= nats / ln 2) every ``--eval-every`` seconds and at the end; the last line is
the final held-out loss. Exits 1 if the final held-out loss is above ``--goal`` (bpc, default: no goal), 3 when
training diverges (nothing is saved then): a non-finite loss or gradient norm, or any floating-point overflow in
a training step or an evaluation. The overflow check matters: the LSTM's gates saturate, so weights blown up to
1e30 still give a finite (huge) loss and a small gradient; only the overflowing pre-activations show it.

Checkpoints (``--save``) hold the model, the optimizer state, the vocabulary, the step and the model sizes;
``--resume`` restores all of them and continues (or, with ``--minutes 0``, only evaluates and samples).

Measured (2026-11-23 22:08 UTC, tiny Shakespeare, defaults, 5 minutes, 2 threads, shared 2-core machine): this
example reached a held-out 1.5448 nats = 2.2287 bpc (1,513 steps, ~32,300 chars/s); its PyTorch twin
``benchmarks/char_lm_torch.py`` (same data, initial weights, offsets, hyperparameters and evaluation), run right
after, 1.5568 nats = 2.2459 bpc (2,385 steps, ~50,900 chars/s). The two start from the same weights and see the
same batches, so their losses track each other by step (held-out 1.5842 at step 921 here, 1.5838 at step 930
there); the gap is the number of steps: torch's oneDNN LSTM step is about 1.5x faster.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

import minirnn  # noqa: E402
from minirnn import LSTM, Adam, CrossEntropyLoss, Embedding, Linear, Module, Vocab, clip_grad_norm  # noqa: E402
from minirnn.data import split_text, stream_batches  # noqa: E402

LN2 = math.log(2.0)


class CharLM(Module):
    """x (T, B) character indices, state ((L, B, H), (L, B, H)) or None -> logits (T, B, V), new state.

    ``backward(dlogits)`` back-propagates through this chunk only (truncated BPTT: the gradient with respect to
    the initial state is dropped).
    """

    def __init__(self, vocab_size: int, embed: int = 64, hidden: int = 256, layers: int = 1,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.config = dict(vocab_size=vocab_size, embed=embed, hidden=hidden, layers=layers)
        self.embedding = Embedding(vocab_size, embed, rng=rng)
        self.lstm = LSTM(embed, hidden, layers, rng=rng)
        self.fc = Linear(hidden, vocab_size, rng=rng)

    def get_config(self) -> dict:
        return dict(self.config)

    def forward(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        out, state = self.lstm(self.embedding(x), state)    # out (T, B, H)
        return self.fc(out), state

    def backward(self, dlogits: np.ndarray) -> None:
        dx, _ = self.lstm.backward(self.fc.backward(dlogits), None)   # (dh0, dc0) dropped: the cut
        self.embedding.backward(dx)
        return None


class Diverged(ArithmeticError):
    """Training stopped being meaningful: an overflow, a nan, or a non-finite loss or gradient norm."""


def train_step(model: CharLM, opt: Adam, loss_fn: CrossEntropyLoss, x: np.ndarray, y: np.ndarray,
               state: tuple[np.ndarray, np.ndarray] | None, clip: float
               ) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """One truncated-BPTT chunk: x, y (B, T) indices, state carried in -> (mean loss in nats, state carried out).

    Raises ``Diverged`` (with the caches cleared) on any floating-point overflow or invalid operation, not only
    on a non-finite loss: the LSTM's gates saturate, so a run whose weights have blown up (say to 1e30, while its
    pre-activations overflow to inf) still reports a finite, merely huge loss and a small gradient norm, and only
    the overflow itself shows that the model is broken. The kernels never overflow on finite, sane weights (their
    sigmoid is tanh-based, the loss is log-sum-exp), so an overflow here is divergence, not noise.
    """
    try:
        with np.errstate(over="raise", invalid="raise"):
            logits, state = model(x.T, state)                  # (T, B, V); state carried to the next chunk
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.T.reshape(-1))
            if not math.isfinite(loss):
                raise Diverged(f"the training loss became {loss}")
            opt.zero_grad()
            model.backward(loss_fn.backward().reshape(logits.shape))
            norm = clip_grad_norm(model.parameters(), clip)
            if not math.isfinite(norm):
                raise Diverged(f"the gradient norm became {norm}")
            opt.step()
    except FloatingPointError as e:
        model.clear_cache()
        loss_fn.clear_cache()
        raise Diverged(f"{e} (the weights have blown up)") from None
    except Diverged:
        model.clear_cache()
        loss_fn.clear_cache()
        raise
    return loss, state


def heldout_loss(model: CharLM, ids: np.ndarray, batch: int = 32, seq_len: int = 100) -> float:
    """Mean next-character cross-entropy (nats) over a token stream, ``batch`` streams from a zero state.

    Raises ``Diverged`` when the model overflows or the loss is not finite.
    """
    model.eval()
    batch = max(1, min(batch, (len(ids) - 1) // seq_len))
    total, count, state = 0.0, 0, None
    loss_fn = CrossEntropyLoss(reduction="sum")
    try:
        with minirnn.no_grad(), np.errstate(over="raise", invalid="raise"):   # as in train_step
            for x, y in stream_batches(ids, batch, seq_len):
                logits, state = model(x.T, state)
                total += loss_fn(logits.reshape(-1, logits.shape[-1]), y.T.reshape(-1))
                count += y.size
    except FloatingPointError as e:
        raise Diverged(f"the held-out evaluation hit {e} (the weights have blown up)") from None
    finally:
        model.train()
    if not math.isfinite(total):
        raise Diverged(f"the held-out loss became {total / count}")
    return total / count


def sample(model: CharLM, vocab: Vocab, n: int, temperature: float, prompt: str, rng: np.random.Generator) -> str:
    """Feed ``prompt`` then draw ``n`` characters from softmax(logits / temperature) (temperature 0: greedy)."""
    model.eval()
    ids = list(vocab.encode(prompt)) if prompt else [int(rng.integers(len(vocab)))]
    out = []
    with minirnn.no_grad():
        logits, state = model(np.array(ids, dtype=np.int64)[:, None], None)
        last = logits[-1, 0].astype(np.float64)
        for _ in range(n):
            if temperature <= 0:
                nxt = int(last.argmax())
            else:
                z = last / temperature
                p = np.exp(z - z.max())
                p /= p.sum()
                nxt = int(rng.choice(len(p), p=p))
            out.append(nxt)
            logits, state = model(np.array([[nxt]], dtype=np.int64), state)
            last = logits[-1, 0].astype(np.float64)
    model.train()
    return prompt + vocab.decode(out)


def save_checkpoint(path: str, model: CharLM, opt: Adam, vocab: Vocab, step: int, chars: int) -> None:
    minirnn.save({"model": model.state_dict(), "optim": opt.state_dict()}, path,
                 config=model.get_config(), vocab=vocab.to_dict(), step=step, chars=chars)


class NotACheckpoint(ValueError):
    """--resume was given a file this example did not write."""


def load_checkpoint(path: str, lr: float) -> tuple[CharLM, Adam, Vocab, int, int]:
    try:
        ckpt = minirnn.load_checkpoint(path)          # the state and the metadata saved beside it
    except (ValueError, TypeError, KeyError, OSError, EOFError) as e:
        raise NotACheckpoint(f"{path!r} is not a char_lm checkpoint (write one with --save): {e}") from None
    meta = ckpt.metadata
    if not {"config", "vocab", "step"} <= set(meta) or not isinstance(ckpt.state_dict, dict):
        raise NotACheckpoint(f"{path!r} is not a char_lm checkpoint (write one with --save)")
    model = CharLM(**meta["config"])
    model.load_state_dict(ckpt.state_dict["model"])
    opt = Adam(model.parameters(), lr=lr)
    opt.load_state_dict(ckpt.state_dict["optim"])
    return model, opt, Vocab.from_dict(meta["vocab"]), int(meta["step"]), int(meta.get("chars", 0))


def diverged(step: int, e: Diverged) -> int:
    print(f"error: training diverged at step {step}: {e}; stopping without saving (try a smaller --lr or --clip)",
          file=sys.stderr)
    return 3


GOAL_RULE = ("goal: none unless --goal BPC is given; then the final held-out bpc is checked (exit 1 when above it), "
             "whatever the run's length")


def main(argv: list[str] | None = None) -> int:
    ap = _cli.parser(__doc__, goal=GOAL_RULE, diverges=True)
    ap.add_argument("--text", type=_cli.text_file, default=None,
                    help="a UTF-8 text file to train on and hold out from (required unless --resume ... --minutes 0)")
    ap.add_argument("--minutes", type=_cli.nonnegative_float, default=5.0,
                    help="training wall time (evaluation not counted); 0 = no training (with --resume: sample only)")
    ap.add_argument("--max-steps", type=_cli.positive_int, default=None,
                    help="stop after this many chunks (default: none, only --minutes limits the run)")
    ap.add_argument("--embed", type=_cli.positive_int, default=64, help="embedding size")
    ap.add_argument("--hidden", type=_cli.positive_int, default=256, help="LSTM hidden units")
    ap.add_argument("--layers", type=_cli.positive_int, default=1, help="LSTM layers")
    ap.add_argument("--batch", type=_cli.positive_int, default=64, help="parallel streams per chunk")
    ap.add_argument("--seq-len", type=_cli.positive_int, default=100, help="truncated-BPTT chunk length")
    ap.add_argument("--lr", type=_cli.positive_float, default=3e-3, help="Adam's learning rate")
    ap.add_argument("--clip", type=_cli.positive_float, default=5.0, help="global gradient-norm clip")
    ap.add_argument("--holdout", type=_cli.open_fraction, default=0.1, help="fraction held out at the end of the text")
    ap.add_argument("--eval-every", type=_cli.positive_float, default=60.0,
                    help="seconds of training between held-out checks")
    ap.add_argument("--log-every", type=_cli.positive_float, default=15.0, help="seconds between progress lines")
    ap.add_argument("--seed", type=_cli.seed, default=0, help="seed for the weights, the offsets and the sampling")
    ap.add_argument("--goal", type=_cli.positive_float, default=None,
                    help="exit 1 if the final held-out bits per character are above this (default: none, no goal)")
    ap.add_argument("--save", metavar="PATH", type=_cli.writable_path, default=None,
                    help="write model + optimizer + vocabulary + step here at the end")
    ap.add_argument("--resume", metavar="PATH", type=_cli.existing_file, default=None,
                    help="continue from a checkpoint written by --save")
    ap.add_argument("--sample", type=_cli.nonnegative_int, default=0, metavar="N",
                    help="print N sampled characters at the end")
    ap.add_argument("--temperature", type=_cli.nonnegative_float, default=0.8,
                    help="sampling temperature (0: always the most likely character)")
    ap.add_argument("--prompt", default="\n", help="text fed to the model before sampling")
    args = ap.parse_args(argv)
    if not args.text and not (args.resume and args.minutes == 0):
        ap.error("--text is required (except with --resume PATH --minutes 0, which only samples)")
    if not args.text and not args.sample:
        ap.error("nothing to do: --resume PATH --minutes 0 without --text neither trains nor evaluates; "
                 "give --sample N (or --text to evaluate on)")
    if args.goal is not None and not args.text:
        ap.error("--goal needs --text (the held-out loss is measured on the end of the text)")

    rng = np.random.default_rng(args.seed)
    step = chars = 0
    if args.resume:
        try:
            model, opt, vocab, step, chars = load_checkpoint(args.resume, args.lr)
        except NotACheckpoint as e:
            ap.error(f"argument --resume: {e}")
        print(f"resumed {args.resume}: step {step}, {chars} characters seen, config {model.get_config()}")
    train_ids = held_ids = None
    if args.text:
        try:
            with open(args.text, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as e:
            ap.error(f"argument --text: {args.text!r} is not UTF-8 text ({e})")
        try:
            train_text, held_text = split_text(text, args.holdout)
        except ValueError as e:
            ap.error(f"argument --text: {e}")
        if not args.resume:
            vocab = Vocab.build([train_text], pad=None, unk="<unk>")
            model = CharLM(len(vocab), args.embed, args.hidden, args.layers, rng=rng)
            opt = Adam(model.parameters(), lr=args.lr)
        train_ids, held_ids = vocab.encode(train_text), vocab.encode(held_text)
        need = max(2 * args.batch, args.batch + args.seq_len) + 1      # every random offset leaves a row per stream
        if len(train_ids) < need:
            ap.error(f"argument --text: the training text ({len(train_ids)} characters) is too short for --batch "
                     f"{args.batch} and --seq-len {args.seq_len} (needs {need})")
        if len(held_ids) < 2:
            ap.error(f"argument --holdout: the held-out text ({len(held_ids)} characters) is too short")
        print(f"{len(text)} characters: {len(train_ids)} train, {len(held_ids)} held out; vocabulary {len(vocab)}; "
              f"model {model.get_config()}, batch {args.batch} x {args.seq_len}", flush=True)

    loss_fn = CrossEntropyLoss()
    budget = args.minutes * 60.0
    train_time = 0.0
    steps_here = 0
    last_log = last_eval = 0.0
    run_loss, run_n = 0.0, 0
    held = None
    if train_ids is not None and budget > 0:
        done = False
        while not done:
            offset = int(rng.integers(args.seq_len))
            state = None
            for x, y in stream_batches(train_ids, args.batch, args.seq_len, offset=offset):
                t0 = time.perf_counter()
                try:
                    loss, state = train_step(model, opt, loss_fn, x, y, state, args.clip)
                except Diverged as e:
                    return diverged(step, e)
                train_time += time.perf_counter() - t0
                step += 1
                steps_here += 1
                chars += y.size
                run_loss += loss
                run_n += 1
                done = train_time >= budget or (args.max_steps is not None and steps_here >= args.max_steps)
                if train_time - last_log >= args.log_every or done:
                    print(f"step {step:6d}  train loss {run_loss / run_n:.4f} nats  {chars / 1e6:.2f}M chars  "
                          f"{train_time:6.1f} s  {steps_here * args.batch * args.seq_len / train_time:,.0f} chars/s",
                          flush=True)
                    last_log, run_loss, run_n = train_time, 0.0, 0
                if train_time - last_eval >= args.eval_every and not done:
                    try:
                        held = heldout_loss(model, held_ids)
                    except Diverged as e:
                        return diverged(step, e)
                    print(f"step {step:6d}  held-out loss {held:.4f} nats  {held / LN2:.4f} bpc  "
                          f"({train_time:.1f} s of training)", flush=True)
                    last_eval = train_time
                if done:
                    break
    if held_ids is not None:
        try:
            held = heldout_loss(model, held_ids)
        except Diverged as e:
            return diverged(step, e)
    if args.save:
        save_checkpoint(args.save, model, opt, vocab, step, chars)
        print(f"saved model, optimizer, vocabulary and step {step} to {args.save}")
    if args.sample:
        print("-" * 20 + f" sample (temperature {args.temperature}) " + "-" * 20)
        print(sample(model, vocab, args.sample, args.temperature, args.prompt, rng))
        print("-" * 60)
    if held is not None:
        print(f"final held-out loss {held:.4f} nats, {held / LN2:.4f} bpc after {train_time:.1f} s of training "
              f"({step} steps)")
        if args.goal is not None and held / LN2 > args.goal:
            print(f"missed the goal: {held / LN2:.4f} bpc > {args.goal}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run(main))
