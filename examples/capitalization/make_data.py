"""Write the capitalization data set: a word in, the same word in capitals out.

    python make_data.py [--out data/words.json] [--seed 14]

200 everyday English words, shuffled with a fixed seed into 160 training, 20 validation and
20 test rows, in the shape cruijff_kit experiments use: {"train": [{"input", "output"}...], ...}.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = """
apple table river garden window pencil orange summer winter forest mountain island basket
candle doctor engine farmer guitar hammer jacket kitchen ladder market needle ocean pocket
rabbit saddle ticket valley wallet yellow zipper bridge castle desert finger harbor jungle
kettle lemon mirror napkin parrot pillow planet rocket shadow silver spider statue tiger
tomato tunnel violin wagon whistle anchor blanket button camera carpet cherry circle cookie
copper cotton dragon feather flower forest giant glove honey iron jelly kitten lantern
magnet meadow monkey number onion paddle peanut pepper pirate puzzle quiet raven ribbon
rubber salad sandal season shovel singer spoon sugar sunset teacher thunder tower turtle
umbrella velvet walnut water winner yogurt zebra acorn bottle branch bubble cabin canyon
chair cloud coffee cricket crystal daisy dinner eagle falcon fence garlic goose grape
helmet hockey insect jigsaw kayak koala lizard mango marble melon mitten muffin noodle
olive otter panda paper peach pearl pickle plum potato pumpkin puppy quilt radio rainbow
robot rose sailor scarf shell shirt skate snail spring squirrel star stone storm tablet
thimble tulip unicorn vase wheel willow wizard wolf yarn apron beach cactus dolphin
elbow fossil goblet hazel igloo jacket kernel lobster mushroom nest orbit pebble quartz
raisin sparrow trumpet useful vessel wander axle yacht zenith badge comet drum
"""


def rows(words: list[str]) -> list[dict[str, str]]:
    return [{"input": word, "output": word.upper()} for word in words]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "data" / "words.json"
    )
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    words = sorted(set(WORDS.split()))[:200]
    assert len(words) == 200, f"need 200 distinct words, have {len(words)}"
    random.Random(args.seed).shuffle(words)
    data = {
        "train": rows(words[:160]),
        "validation": rows(words[160:180]),
        "test": rows(words[180:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1) + "\n"
    if not args.out.exists() or args.out.read_text() != text:
        args.out.write_text(text)
    print(
        f"{args.out}: {len(data['train'])} train, {len(data['validation'])} validation, "
        f"{len(data['test'])} test"
    )


if __name__ == "__main__":
    main()
