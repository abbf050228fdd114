import numpy as np
import pytest

from genadapt.retrieval import average_precision, retrieval_scores, split_pool_queries


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_separated_domains_retrieve_nothing_across():
    # Source vectors near e0, target near e1: every neighbour is from the query's own domain.
    src = unit([[1, 0.01 * i] for i in range(6)])
    tgt = unit([[0.01 * i, 1] for i in range(6)])
    r = retrieval_scores(src[:2], tgt[:2], src[2:], tgt[2:], ks=[1, 2, 4, 8])
    assert r["A_k"] == [0, 0, 0, 4] and r["B_k"] == [0, 0, 0, 4]  # k=8 is the whole pool
    assert r["map_source_to_target"] == pytest.approx(np.mean([1 / 5, 2 / 6, 3 / 7, 4 / 8]))


def test_aligned_domains_retrieve_the_other_domain_first():
    # Each source image has a target twin at the same place, and queries sit on the target pool.
    pool_src = unit([[1, 0, 0], [0, 1, 0]])
    pool_tgt = unit([[1, 0.1, 0], [0.1, 1, 0]])
    queries = unit([[1, 0.2, 0]])
    r = retrieval_scores(queries, queries, pool_src, pool_tgt, ks=[1, 2])
    assert r["A_k"] == [1.0, 1.0]  # nearest is the target twin, then the source original
    assert r["B_k"] == [0.0, 1.0]
    # Ranking: target twin, source original, other target, other source → AP (1 + 2/3) / 2.
    assert r["map_source_to_target"] == pytest.approx((1 + 2 / 3) / 2)


def test_average_precision():
    assert average_precision(np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(average_precision(np.array([False, False])))


def test_pool_and_queries_are_disjoint_and_seeded():
    pool, queries = split_pool_queries(20, 10, 5, seed=3)
    assert len(pool) == 10 and len(queries) == 5 and not set(pool) & set(queries)
    assert split_pool_queries(20, 10, 5, seed=3) == (pool, queries)
    with pytest.raises(ValueError, match="need 10 pool"):
        split_pool_queries(12, 10, 5, seed=0)
    with pytest.raises(ValueError, match="exceeds the pool"):
        retrieval_scores(unit([[1, 0]]), unit([[1, 0]]), unit([[1, 0]]), unit([[0, 1]]), ks=[3])
