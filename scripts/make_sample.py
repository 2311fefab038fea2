#!/usr/bin/env python3
"""Writes python/bpelm/data/sample.txt: about 100 KB of original short stories for the demo.

Every sentence pattern and word list below was written for bpelm; nothing is taken from any
other text. The stories are assembled from them with a fixed seed, so re-running the script
reproduces the file byte for byte. Stories are separated by `<|endoftext|>` lines, like the
TinyStories and OpenWebText corpora.
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "python" / "bpelm" / "data" / "sample.txt"
TARGET_BYTES = 100_000

NAMES = [
    "Mira",
    "Tobin",
    "Ada",
    "Felix",
    "Nora",
    "Oskar",
    "Lena",
    "Pim",
    "Rosa",
    "Theo",
    "Ivy",
    "Bruno",
    "Clara",
    "Jonah",
    "Wren",
    "Milo",
    "Hazel",
    "Ezra",
    "Lucy",
    "Sami",
]
ANIMALS = [
    ("a small grey rabbit", "the rabbit"),
    ("an old brown dog", "the dog"),
    ("a curious black cat", "the cat"),
    ("a tiny green frog", "the frog"),
    ("a sleepy owl", "the owl"),
    ("a clever red fox", "the fox"),
    ("a shy hedgehog", "the hedgehog"),
    ("a noisy duck", "the duck"),
    ("a friendly goat", "the goat"),
    ("a little blue bird", "the bird"),
]
PLACES = [
    "the edge of the forest",
    "a quiet village by the sea",
    "the top of a windy hill",
    "a garden full of tall sunflowers",
    "an old house with a creaking door",
    "the banks of a slow river",
    "a busy market in the town square",
    "a farm with a red barn",
    "a small island with one lighthouse",
    "the library on Maple Street",
]
OBJECTS = [
    ("a shiny brass key", "the key"),
    ("a kite with a long yellow tail", "the kite"),
    ("a map drawn in pencil", "the map"),
    ("a jar of honey", "the jar"),
    ("a wooden boat", "the boat"),
    ("a lantern that glowed softly", "the lantern"),
    ("a book with a torn cover", "the book"),
    ("a basket of ripe plums", "the basket"),
    ("a music box", "the music box"),
    ("a smooth white stone", "the stone"),
]
WEATHER = [
    "The sun was warm and bright.",
    "A light rain tapped on the roofs.",
    "The wind was strong and cold.",
    "Snow covered the ground like a blanket.",
    "Fog hid the trees until noon.",
    "The sky was clear and full of birds.",
]
FEELINGS = ["happy", "worried", "brave", "curious", "tired", "proud", "nervous", "excited"]
PROBLEMS = [
    ("{o} was stuck high in a tree", "climbed a ladder and reached for it"),
    ("{o} had fallen into the water", "used a long stick to pull it back to the shore"),
    ("{o} was lost somewhere in the tall grass", "searched slowly, step by step"),
    ("{o} was broken into two pieces", "fixed it carefully with glue and string"),
    ("{o} had been taken by a gust of wind", "ran after it as fast as they could"),
    ("{o} was locked inside an old chest", "tried every key on the ring until one fit"),
]
LESSONS = [
    "Sharing made the day better for everyone.",
    "Asking for help is nothing to be ashamed of.",
    "Being patient can solve a problem that rushing cannot.",
    "A good friend is worth more than any treasure.",
    "It is brave to try again after a mistake.",
    "Listening carefully can teach you something new.",
]
ENDINGS = [
    "That night {n} fell asleep with a smile.",
    "From then on, {n} and {a} met every morning.",
    "{N} never forgot that day.",
    "Everyone laughed, and the sun went down slowly behind the hills.",
    "When {n} got home, there was warm soup waiting on the table.",
]
ABOUT = [
    "A tokenizer turns text into a list of numbers. It begins with the 256 possible byte "
    "values, so any text at all can be written down, in any language. Then it learns which "
    "pairs of neighbours appear together most often and gives each such pair a new number of "
    "its own. After a few thousand merges, common words become single tokens, and rare words "
    "are spelled out from smaller pieces.",
    "Training the merges is a counting problem. The text is first cut into words and spaces, "
    "and identical words are counted once with their frequency. Each step picks the most "
    "frequent pair, merges it everywhere it occurs, and updates only the counts that changed. "
    "A heap keeps the next best pair ready, so the whole run takes seconds instead of hours.",
    "A language model reads the numbers and guesses the next one. At first its guesses are no "
    "better than chance, and the loss is close to the logarithm of the vocabulary size. As "
    "training goes on, it learns which tokens follow which, then short phrases, then the shape "
    "of whole sentences. The loss falls quickly at first and then more slowly.",
    "The learning rate rises during a short warmup and then follows a cosine curve down to a "
    "small final value. Gradients are clipped so that one unusual batch cannot throw the "
    "weights far away. Every few hundred steps the model is tested on text it has never seen, "
    "and that validation loss is the number that tells us whether it is really learning.",
]


def story(rng: random.Random) -> str:
    n = rng.choice(NAMES)
    friend = rng.choice([x for x in NAMES if x != n])
    animal, the_animal = rng.choice(ANIMALS)
    place = rng.choice(PLACES)
    obj, the_obj = rng.choice(OBJECTS)
    problem, fix = rng.choice(PROBLEMS)
    feeling, later = rng.sample(FEELINGS, 2)
    opener = rng.choice(
        [
            f"Once upon a time, {n} lived near {place}.",
            f"There was once a child named {n} who loved to explore {place}.",
            f"Every summer, {n} visited {place} with {friend}.",
            f"Long ago, in {place}, there lived a child called {n}.",
        ]
    )
    parts = [
        opener,
        rng.choice(WEATHER),
        f"One day {n} found {obj} and felt {feeling}.",
        f'{n} showed it to {friend}, who said, "Let\'s keep it safe."',
        f"Then {animal} came along and watched them with bright eyes.",
        f"But soon {problem.format(o=the_obj)}.",
        f"{n} did not give up. {n} {fix}.",
        f"{the_animal.capitalize()} helped too, and together they made it.",
        f"{n} felt {later} and thanked {friend} and {the_animal}.",
    ]
    if rng.random() < 0.5:
        count = rng.randint(2, 9)
        parts.insert(
            3, f"They counted {count} clouds, then {count + rng.randint(1, 5)}, then lost count."
        )
    if rng.random() < 0.6:
        parts.append(rng.choice(LESSONS))
    parts.append(rng.choice(ENDINGS).format(n=n, N=n, a=the_animal))
    # Split into two or three paragraphs at sentence boundaries.
    cut1 = rng.randint(3, 5)
    cut2 = rng.randint(cut1 + 2, len(parts) - 1)
    paragraphs = [parts[:cut1], parts[cut1:cut2], parts[cut2:]]
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


def main() -> None:
    rng = random.Random(20240601)
    docs: list[str] = []
    size = 0
    while size < TARGET_BYTES:
        if len(docs) % 25 == 12:
            doc = ABOUT[(len(docs) // 25) % len(ABOUT)]
        else:
            doc = story(rng)
        docs.append(doc)
        size += len(doc.encode()) + len("\n<|endoftext|>\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(d + "\n<|endoftext|>\n" for d in docs), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes, {len(docs)} documents)")


if __name__ == "__main__":
    main()
