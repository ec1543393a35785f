"""Regenerate runner/data/tickets.csv, the demo's sample shipped inside the package:
synthetic support tickets with their expected category.

The expected label is what the simulator's reference model answers, so the demo's baseline
scores 100 % and the candidate's seeded wrong answers show up as a measurable regression.

    ./dev python datasets/make_tickets.py
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl

from runner.simulator import reference_answer

TEMPLATES = {
    "billing": [
        "I was charged twice for my subscription this month",
        "Please send a refund for order {n}, the invoice is wrong",
        "Why did the price on my invoice go up?",
        "My payment failed but the bill says paid",
    ],
    "account": [
        "I cannot log in after the password reset",
        "My account is locked after too many attempts",
        "How do I turn on 2FA for the team?",
        "Sign in keeps asking for my password again",
    ],
    "technical": [
        "The app crashes when I open the reports page",
        "Export gives an error 500 on file {n}",
        "The dashboard is broken since the update",
        "Search is not working on mobile",
    ],
    "shipping": [
        "My package has not arrived, tracking {n} shows nothing",
        "The courier left the parcel at the wrong address",
        "When will you ship order {n}?",
        "Delivery was promised for Monday",
    ],
    "other": [
        "Do you have an office in Lisbon?",
        "Can I suggest a feature for the roadmap?",
        "Thanks for the great support last week",
        "Who is the right contact for partnerships?",
    ],
}
CUSTOMERS = ["free", "pro", "enterprise"]


def make(rows: int = 500, seed: int = 11) -> pl.DataFrame:
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        category = rng.choice(list(TEMPLATES))
        ticket = rng.choice(TEMPLATES[category]).format(n=rng.randint(1000, 9999))
        expected = reference_answer({"ticket": ticket})
        records.append(
            {"id": f"T{i + 1:04d}", "ticket": ticket, "plan": rng.choice(CUSTOMERS),
             "expected": expected}
        )  # fmt: skip
    return pl.DataFrame(records)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "runner" / "data" / "tickets.csv"
    frame = make()
    frame.write_csv(out)
    print(f"wrote {frame.height} rows to {out}")
    print(frame.group_by("expected").len().sort("expected"))
