#!/usr/bin/env python3
"""A MovieLens-shaped data set many times larger than ml-latest-small, for timing and memory
of `hyrank eval recommend` at the scale of ml-1m or ml-25m. Not for quality: its users are
copies of the small set's.

    python3 bench/scale_movielens.py ../shared/data/movielens-latest-small OUT REPS BLOCKS

Writes OUT/movies.csv (the catalog BLOCKS times, ids offset by 1,000,000 per block, titles
marked with the block) and OUT/ratings.csv: REPS copies of every user (ids offset by 1,000 per
copy), copy r rating block r % BLOCKS's movies, each rating kept with probability 0.85 (seed 2)
so the copies differ. REPS 50, BLOCKS 6 gives 4.3 M ratings by 30,500 users on 58,452 movies.
"""
import csv
import os
import random
import sys


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    src, out, reps, blocks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    random.seed(2)
    with open(os.path.join(src, "ratings.csv")) as f:
        rows = list(csv.reader(f))[1:]
    with open(os.path.join(src, "movies.csv")) as f:
        movies = list(csv.reader(f))
    with open(os.path.join(out, "movies.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(movies[0])
        for b in range(blocks):
            for movie, title, genres in movies[1:]:
                w.writerow([int(movie) + b * 1_000_000, f"{title} ({b})" if b else title, genres])
    kept = 0
    with open(os.path.join(out, "ratings.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        for rep in range(reps):
            block = rep % blocks
            for user, movie, rating, ts in rows:
                if random.random() < 0.15:
                    continue
                w.writerow([int(user) + rep * 1000, int(movie) + block * 1_000_000, rating, int(ts) + rep])
                kept += 1
    print(f"{kept} ratings, {len(movies) - 1} x {blocks} movies")


if __name__ == "__main__":
    main()
