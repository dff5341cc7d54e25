"""PyTorch twin of examples/name_classifier.py: the same model, data pipeline and hyperparameters, in torch.

    python benchmarks/name_classifier_torch.py --train ../shared/data/names_train.csv.gz \
        --test ../shared/data/names_test.csv.gz [--epochs 30] [--threads 2]

The data pipeline is minirnn.data itself (same vocabulary, same seeded batches, index for index), so the two
programs differ only by the framework and by the initial weights (drawn from the same distributions, but by
torch's generator rather than NumPy's: compare accuracies over seeds, not run against run). Prints one line per epoch (loss, test accuracy, seconds
of training and of evaluation) and, last, the test accuracy.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from minirnn.data import SequenceBatcher, Vocab, read_name_csv  # noqa: E402


class NameClassifier(nn.Module):
    def __init__(self, n_chars: int, hidden: int, n_classes: int, n_layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_chars, hidden)
        self.gru = nn.GRU(hidden, hidden, n_layers, bidirectional=True, dropout=dropout)
        self.fc = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(x.t())                                    # (T, B, hidden)
        packed = pack_padded_sequence(emb, lengths, enforce_sorted=False)
        _, h_n = self.gru(packed)                                      # (layers * 2, B, hidden)
        return self.fc(torch.cat([h_n[-2], h_n[-1]], dim=1))          # last layer: forward, backward


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--bucket", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    vocab = Vocab.ascii()
    train_names, train_langs = read_name_csv(args.train, limit=args.limit)
    test_names, test_langs = read_name_csv(args.test, limit=args.limit)
    labels = Vocab.build([train_langs], pad=None, unk=None)
    train_x = [vocab.encode(n) for n in train_names]
    test_x = [vocab.encode(n) for n in test_names]
    train_y, test_y = labels.encode(train_langs), labels.encode(test_langs)
    train_batches = SequenceBatcher(train_x, train_y, args.batch_size, seed=args.seed, bucket=args.bucket,
                                    pad_value=vocab.pad_index)
    test_batches = SequenceBatcher(test_x, test_y, args.batch_size, shuffle=False,
                                   bucket=len(test_x) // args.batch_size + 1, pad_value=vocab.pad_index)

    model = NameClassifier(len(vocab), args.hidden, len(labels), args.layers, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs) if args.schedule == "cosine" else None
    loss_fn = nn.CrossEntropyLoss()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(train_x)} train / {len(test_x)} test "
          f"names, {len(labels)} languages, {len(train_batches)} batches of {args.batch_size}")
    acc = 0.0
    train_times = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for x, lengths, y, _ in train_batches:
            logits = model(torch.from_numpy(x), torch.from_numpy(lengths))
            loss = loss_fn(logits, torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            count += len(y)
        t1 = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, lengths, y, _ in test_batches:
                pred = model(torch.from_numpy(x), torch.from_numpy(lengths)).argmax(1).numpy()
                correct += int((pred == y).sum())
        t2 = time.perf_counter()
        acc = correct / len(test_x)
        train_times.append(t1 - t0)
        if sched is not None:
            sched.step()
        print(f"epoch {epoch:3d}  loss {total / count:.4f}  test acc {acc:.4f}  train {t1 - t0:.2f} s  "
              f"eval {t2 - t1:.2f} s", flush=True)
    print(f"median train seconds per epoch: {float(np.median(train_times)):.2f}")
    print(f"test accuracy: {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
