#!/usr/bin/env python3
"""Checks scripts/movielens_csv.py on small files in MovieLens's older layouts holding what
the real ones hold and what broke it before: titles and tags that end or start with ':',
Windows-1252 text with a byte it leaves undefined, a form feed inside a title, Windows line
ends, 100K's "unknown" genre; and a bad line that must leave no partial file. Run by
scripts/test.sh; exits non-zero naming the first difference."""
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "movielens_csv.py")


def convert(src, out):
    return subprocess.run([sys.executable, SCRIPT, src, out], capture_output=True, text=True)


def expect(path, want):
    got = open(path, encoding="utf-8", newline="").read()
    if got != want:
        sys.exit(f"{path}:\n got {got!r}\nwant {want!r}")


def converts_to(src, out, files):
    """Converts `src` into `out` and checks each of `files` (name -> its whole text)."""
    done = convert(src, out)
    if done.returncode != 0:
        sys.exit(f"conversion failed: {done.stderr}")
    for name, want in files.items():
        expect(os.path.join(out, name), want)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        one_m = os.path.join(tmp, "ml-1m")
        os.mkdir(one_m)
        # 0x85 is an ellipsis in Windows-1252, 0x81 is undefined there (read as U+0081), 0xe9 is é.
        movies = (
            b"1::Foo:::Comedy\r\n"
            b"2:::Bar::Drama|War\r\n"
            b"3::Caf\xe9 \x85 Caf\x81::\r\n"
            b"4::Page\x0cbreak::Horror\r\n"
        )
        open(os.path.join(one_m, "movies.dat"), "wb").write(movies)
        open(os.path.join(one_m, "ratings.dat"), "wb").write(b"1::1::5::978300760\n2::4::3::978300761\n")
        open(os.path.join(one_m, "tags.dat"), "wb").write(b"1::1::note:::978300762\n1::2:::odd::978300763\n")
        converts_to(one_m, os.path.join(tmp, "csv"), {
            "movies.csv": "movieId,title,genres\n1,Foo:,Comedy\n2,:Bar,Drama|War\n"
            "3,Caf\u00e9 \u2026 Caf\u0081,(no genres listed)\n4,Page\x0cbreak,Horror\n",
            "ratings.csv": "userId,movieId,rating,timestamp\n1,1,5,978300760\n2,4,3,978300761\n",
            "tags.csv": "userId,movieId,tag,timestamp\n1,1,note:,978300762\n1,2,:odd,978300763\n",
        })

        hundred_k = os.path.join(tmp, "ml-100k")
        os.mkdir(hundred_k)
        open(os.path.join(hundred_k, "u.genre"), "wb").write(b"unknown|0\nAction|1\nComedy|2\n\n")
        open(os.path.join(hundred_k, "u.item"), "wb").write(
            b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n2|Lost (1995)|01-Jan-1995||http://y|1|0|0\n"
        )
        open(os.path.join(hundred_k, "u.data"), "wb").write(b"196\t1\t3\t881250949\n")
        converts_to(hundred_k, os.path.join(tmp, "csv100k"), {
            "movies.csv": "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Lost (1995),(no genres listed)\n",
            "ratings.csv": "userId,movieId,rating,timestamp\n196,1,3,881250949\n",
        })

        # A line that does not split stops the conversion with its file and line, and leaves the
        # output folder as it was: the earlier run's files, none of this run's.
        out = os.path.join(tmp, "csv")
        before = {name: open(os.path.join(out, name), "rb").read() for name in sorted(os.listdir(out))}
        open(os.path.join(one_m, "movies.dat"), "ab").write(b"5::New Film::Drama\n")
        open(os.path.join(one_m, "ratings.dat"), "wb").write(b"1::1::5::978300760\n1::2::5\n")
        done = convert(one_m, out)
        if done.returncode == 0 or "ratings.dat:2: expected 4 fields" not in done.stderr:
            sys.exit(f"a bad line was not refused with its line: rc {done.returncode}, {done.stderr!r}")
        after = {name: open(os.path.join(out, name), "rb").read() for name in sorted(os.listdir(out))}
        if after != before:
            sys.exit(f"a stopped conversion changed the output folder: {sorted(after)}")
        # A release missing a file is named in one line, not a traceback.
        os.remove(os.path.join(hundred_k, "u.genre"))
        done = convert(hundred_k, os.path.join(tmp, "none"))
        if done.returncode == 0 or "u.genre: No such file" not in done.stderr or "Traceback" in done.stderr:
            sys.exit(f"a missing file was not named: {done.stderr!r}")
    print("movielens_csv.py: ok")


if __name__ == "__main__":
    main()
