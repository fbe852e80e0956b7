#!/usr/bin/env python3
"""Writes a MovieLens release in its older layouts as ml-latest lays it out, which hyrank reads
with the flags the README gives for ml-latest-small:

    python3 scripts/movielens_csv.py ml-1m /tmp/ml-1m-csv

reads
- MovieLens 100K: u.data (user, item, rating, timestamp; tab-separated), u.item (id|title|
  release date|video release date|IMDb URL|19 genre flags) and u.genre (name|index);
- MovieLens 1M and 10M: ratings.dat (UserID::MovieID::Rating::Timestamp), movies.dat
  (MovieID::Title::Genres) and, where there is one, tags.dat (UserID::MovieID::Tag::Timestamp);

and writes OUT/ratings.csv (userId,movieId,rating,timestamp), OUT/movies.csv (movieId,title,
genres; genres joined by |, "(no genres listed)" when a film has none) and OUT/tags.csv
(userId,movieId,tag,timestamp) when the release has tags: comma-separated with a header,
quoted where a value needs it, lines ending in \n, in UTF-8. MovieLens 100K's "unknown" genre
is a flag for no known genre, not a genre: a film with only it is "(no genres listed)", as
ml-latest writes such films. The older releases are ISO-8859-1 (Windows-1252 in practice); a
file that is valid UTF-8 is read as UTF-8. Every row is kept: a line that does not split into
its fields stops the conversion, naming file, line and what was found, and leaves the output
folder as it was (no partial file, no new file beside an earlier run's). MovieLens 100K and 1M
name a genre "Children's" where ml-latest and 10M say "Children"; names are kept as written.
"""
import codecs
import csv
import os
import sys


def _undefined_as_latin1(error):
    # Windows-1252 leaves five bytes undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d); ISO-8859-1 reads
    # them as the control characters they were written as. Only those bytes: the rest of the
    # file stays Windows-1252 (0x85 is an ellipsis there, a line break in ISO-8859-1).
    bad = error.object[error.start : error.end]
    return "".join(chr(b) for b in bad), error.end


codecs.register_error("movielens_latin1", _undefined_as_latin1)


def text(path):
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        sys.exit(f"{path}: {e.strerror} (the release's other files are read beside it)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="movielens_latin1")


def rows(path, separator, fields, free=None):
    """Each line's fields; `free` is the field (a title, a tag) that may hold the separator
    itself: the fields before it are split from the left and those after it from the right,
    so a title ending in ':' (`Foo:::Comedy`) keeps its colon."""
    # Lines end in \n (\r\n from Windows); str.splitlines would also break a title at a form
    # feed, U+001C..U+001E or U+2028.
    for number, line in enumerate(text(path).split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if free is None:
            parts = line.split(separator)
        else:
            parts = line.split(separator, free)
            if len(parts) == free + 1:
                parts[free:] = parts[free].rsplit(separator, fields - free - 1)
        if len(parts) != fields:
            sys.exit(f"{path}:{number}: expected {fields} fields separated by {separator!r}, found {len(parts)}: {line!r}")
        yield parts


def write_all(files):
    """Writes each `(path, header, records)` through a file beside it; the files are renamed into
    place only once every one is whole, so a conversion stopped by a bad line (in any input)
    leaves the output folder as it was: no partial file, and no new file beside an earlier
    run's."""
    written = []
    try:
        for path, header, records in files:
            partial = path + ".partial"
            written.append((partial, path))
            count = 0
            with open(partial, "w", newline="", encoding="utf-8") as out:
                w = csv.writer(out, lineterminator="\n")
                w.writerow(header)
                for record in records:
                    w.writerow(record)
                    count += 1
            print(f"{path}: {count} rows", file=sys.stderr)
        for partial, path in written:
            os.replace(partial, path)
    finally:
        for partial, _ in written:
            if os.path.exists(partial):
                os.remove(partial)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    at = lambda name: os.path.join(src, name)
    os.makedirs(out, exist_ok=True)
    if os.path.exists(at("u.data")):
        names = {}
        for name, index in rows(at("u.genre"), "|", 2):
            names[int(index)] = name
        def movies():
            for parts in rows(at("u.item"), "|", 5 + len(names)):
                flags = parts[5:]
                genres = [names[i] for i, flag in enumerate(flags) if flag == "1" and names[i] != "unknown"]
                yield [parts[0], parts[1], "|".join(genres) or "(no genres listed)"]
        write_all([
            (os.path.join(out, "movies.csv"), ["movieId", "title", "genres"], movies()),
            (os.path.join(out, "ratings.csv"), ["userId", "movieId", "rating", "timestamp"], rows(at("u.data"), "\t", 4)),
        ])
    elif os.path.exists(at("ratings.dat")):
        def movies():
            for movie, title, genres in rows(at("movies.dat"), "::", 3, free=1):
                yield [movie, title, genres or "(no genres listed)"]
        files = [
            (os.path.join(out, "movies.csv"), ["movieId", "title", "genres"], movies()),
            (os.path.join(out, "ratings.csv"), ["userId", "movieId", "rating", "timestamp"], rows(at("ratings.dat"), "::", 4)),
        ]
        if os.path.exists(at("tags.dat")):
            files.append((os.path.join(out, "tags.csv"), ["userId", "movieId", "tag", "timestamp"], rows(at("tags.dat"), "::", 4, free=2)))
        write_all(files)
    else:
        sys.exit(f"{src}: neither u.data (MovieLens 100K) nor ratings.dat (1M, 10M); ml-latest, 20M and 25M are CSV already")


if __name__ == "__main__":
    main()
