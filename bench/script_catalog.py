#!/usr/bin/env python3
"""A synthetic catalog in scripts written without spaces, for timing BM25 analysis.

Half the items are Thai (words drawn from a short list and run together, as Thai is written),
half Chinese (common characters in runs split by commas). The words are random, so the
catalog measures analysis cost and index size, not relevance.

    python3 bench/script_catalog.py OUT.jsonl [ITEMS]   # ITEMS defaults to 3000
    hyrank index --catalog OUT.jsonl --index-dir DIR     # then again, reusing the vectors:
                                                         # the summary's "build bm25 index"
"""
import json
import random
import sys

THAI = (
    "กาแฟ ร้าน สด กางเกง แฟชั่น ผู้ชาย ผู้หญิง เสื้อ รองเท้า กระเป๋า หนังสือ โทรศัพท์ มือถือ "
    "คอมพิวเตอร์ ราคา ถูก ดี ใหม่ สวย ขาย ซื้อ ส่ง ฟรี ทุก วัน เดินทาง ท่องเที่ยว ทะเล ภูเขา "
    "อาหาร อร่อย น้ำ ชา นม ขนม"
).split()
HAN = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么"
    "心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分"
    "将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重"
    "被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住"
    "员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制"
    "解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非"
    "流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量"
    "空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双"
)


def item(rng: random.Random, i: int) -> dict:
    if i % 2 == 0:
        title = "".join(rng.choice(THAI) for _ in range(3))
        words = ("".join(rng.choice(THAI) for _ in range(rng.randint(2, 6))) for _ in range(25))
        text = " ".join(words)
    else:
        title = "".join(rng.choice(HAN) for _ in range(6))
        runs = ("".join(rng.choice(HAN) for _ in range(rng.randint(4, 12))) for _ in range(15))
        text = "，".join(runs)
    return {"id": f"i{i}", "title": title, "text": text}


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 3000
    rng = random.Random(7)
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        for i in range(count):
            out.write(json.dumps(item(rng, i), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
