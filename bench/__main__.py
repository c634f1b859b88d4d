"""`make bench`: figures measured side by side in one run; the last line is JSON."""

from __future__ import annotations

import json

from bench import search_overhead


def main() -> None:
    search = search_overhead.run()
    print("figure                                     value")
    print(
        f"embedded kNN median, {search['vectors']:,} x 512     {search['engine_ms']:.1f} ms "
        f"(numpy alone {search['numpy_ms']:.1f} ms)"
    )
    print(f"embedded_search_overhead_vs_numpy_100k     {search['ratio']:.2f}")
    print(json.dumps({"embedded_search_overhead_vs_numpy_100k": round(search["ratio"], 3)}))


if __name__ == "__main__":
    main()
