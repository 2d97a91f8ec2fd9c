"""Merging the parts of a multi-process evaluation (the processes themselves: tests/engine/test_distributed.py)."""

import itertools
import math

import pytest
import torch

import advdistill as ad
from advdistill.evaluation.runner import run_metrics
from advdistill.evaluation.sharding import PartResult, is_sharded, merge_parts, merge_values, part_bounds, part_seed
from advdistill.plugins import get_registry
from advdistill.testing import tiny_model


@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 2), (7, 3), (2, 4), (0, 2), (10000, 8)])
def test_parts_are_contiguous_cover_every_image_once_and_differ_by_at_most_one(n, world):
    bounds = [part_bounds(n, rank, world) for rank in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_process_0_keeps_the_seed_the_others_get_their_own():
    assert part_seed(5, 0) == 5
    assert len({part_seed(5, rank) for rank in range(8)}) == 8


def test_numbers_average_weighted_by_image_counts_equal_ones_stay():
    # 3 of 4 right and 1 of 2 right: 4 of 6 overall
    assert merge_values([{"clean": 75.0}, {"clean": 50.0}], [4, 2]) == {"clean": pytest.approx(100 * 4 / 6)}
    curve = [[{"eps": 8 / 255, "pgd20": 50.0, "autoattack": None}],
             [{"eps": 8 / 255, "pgd20": 0.0, "autoattack": None}]]
    merged = merge_values(curve, [1, 3])
    assert merged == [{"eps": 8 / 255, "pgd20": 12.5, "autoattack": None}]
    assert merged[0]["eps"] is curve[0][0]["eps"]  # not recomputed: exactly the ε it was
    assert math.isnan(merge_values([float("nan"), float("nan")], [1, 1]))


@pytest.mark.parametrize("parts", [[{"a": 1.0}, {"b": 1.0}], [[1.0], [1.0, 2.0]], ["x", "y"], [True, False]])
def test_parts_that_cannot_be_merged_are_refused(parts):
    with pytest.raises(ValueError):
        merge_values(parts, [1, 1])


def test_records_concatenate_in_rank_order_errors_and_slowest_time_win():
    parts = [
        {"clean": PartResult(2, {"clean": 50.0}, None, 1.0, {"clean": torch.tensor([True, False])}),
         "gd": PartResult(2, {}, "RuntimeError: boom", 0.5)},
        {"clean": PartResult(3, {"clean": 100.0}, None, 2.0, {"clean": torch.tensor([True, True, True])}),
         "gd": PartResult(3, {"gd": 1.0}, None, 0.5)},
    ]
    values, errors, seconds, records = merge_parts(parts, ["clean", "gd"], n=5)
    assert values == {"clean": pytest.approx(80.0)} and seconds == {"clean": 2.0, "gd": 0.5}
    assert errors == {"gd": "RuntimeError: boom (process 0)"}
    assert records["clean"].tolist() == [True, False, True, True, True]


def test_a_metric_run_in_process_0_only_is_taken_as_it_is():
    parts = [{"median": PartResult(5, {"median": 3.0}, None, 1.0, {})}, {}]
    assert merge_parts(parts, ["median"], n=5)[0] == {"median": 3.0}


def test_records_that_do_not_cover_the_images_are_an_error():
    parts = [{"clean": PartResult(2, {"clean": 50.0}, None, 1.0, {"clean": torch.tensor([True, False])})}]
    _, errors, _, _ = merge_parts(parts, ["clean"], n=4)
    assert "2 per-image results for 4 images" in errors["clean"]


@pytest.mark.parametrize(("kind", "params", "teacher"), [
    ("clean", {}, False),
    ("pgd", {"steps": 3, "random_start": False, "eps": 0.1, "step_size": 0.05}, False),
    ("grad_alignment", {}, True),
])
def test_two_halves_merged_equal_the_whole_for_deterministic_metrics(kind, params, teacher):
    # the claim behind mean_over_images, checked against an independent one-process evaluation
    torch.manual_seed(0)
    images = torch.randint(0, 256, (13, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 4, (13,))
    model = tiny_model(num_classes=4, in_chans=1, width=4, seed=1, batchnorm=False).eval()
    other = tiny_model(num_classes=4, in_chans=1, width=4, seed=2, batchnorm=False).eval() if teacher else None
    metric = ad.build("metric", kind, **params)
    assert is_sharded(metric)
    common = dict(device=torch.device("cpu"), teacher=other, batch_size=4, show_progress=False)
    whole_records: dict = {}
    whole, errors, _ = run_metrics(model, images, labels, {kind: metric}, records=whole_records, **common)
    assert errors == {}
    parts = []
    for start, stop in (part_bounds(13, 0, 2), part_bounds(13, 1, 2)):
        records: dict = {}
        values, _, seconds = run_metrics(model, images[start:stop], labels[start:stop], {kind: metric},
                                         records=records, **common)
        parts.append({kind: PartResult(stop - start, values, None, seconds[kind], records)})
    values, errors, _, records = merge_parts(parts, [kind], n=13)
    assert errors == {} and values.keys() == whole.keys()
    for key in whole:
        assert values[key] == pytest.approx(whole[key], rel=1e-6, abs=1e-9), key
    assert records.keys() == whole_records.keys()
    assert all(torch.equal(records[k], whole_records[k]) for k in records)


def test_every_built_in_metric_says_whether_it_can_be_sharded():
    registry = get_registry()
    for name in registry.names("metric"):
        if registry.spec("metric", name).package == "advdistill":
            flag = registry.get("metric", name).mean_over_images
            if isinstance(flag, property):  # decided by the config: sharded with its defaults
                flag = ad.build("metric", name).mean_over_images
            assert flag is True, name


def test_autoattack_with_a_limit_runs_whole_in_process_0():
    # limit = N means the first N images of the whole test set, not N of each process's part
    assert is_sharded(ad.build("metric", "autoattack"))
    assert not is_sharded(ad.build("metric", "autoattack", limit=8))
