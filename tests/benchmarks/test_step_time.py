"""benchmarks/step_time.py: the plain reference loop computes the framework's step, and the report."""

import json

import pytest

TINY = ["--device", "cpu", "--scale", "small", "--attack-steps", "1", "--warmup", "0", "--steps", "1",
        "--rounds", "2", "--batch-size", "4", "--json"]
# a BatchNorm student: the attack's eval mode and the losses' train mode matter
BN_STUDENT = ["--student", '{kind = "tiny_bn_net"}']


def run(module, capsys, *args):
    code = module.main([*TINY, *args])
    return code, json.loads(capsys.readouterr().out)


def test_plain_loop_computes_the_framework_step_for_every_preset(benchmark_script, capsys, tiny_bn_net):
    step_time = benchmark_script("step_time")
    code, summary = run(step_time, capsys, *BN_STUDENT)
    assert code == 0
    assert [r["name"] for r in summary["results"]] == list(step_time.PRESETS)
    for r in summary["results"]:
        check = r["check"]
        # same weights, batch and attack start: the same loss and the same updated weights, bit for bit on CPU
        assert check["same"] and check["loss_abs_diff"] == 0.0 and check["weights_max_abs_diff"] == 0.0, r["name"]
        for side in ("framework", "plain"):
            timing = r[side]
            assert timing["ms_per_step"] > 0 and len(timing["rounds_ms"]) == 2
            # both are rounded to 0.1 (abs=0.05): on a loaded machine a tiny step makes under 5 images/s
            assert timing["images_per_s"] == pytest.approx(4 / (timing["ms_per_step"] / 1e3), rel=1e-2, abs=0.05)
            assert timing["s_per_epoch"] == pytest.approx(50_000 / (4 / (timing["ms_per_step"] / 1e3)), rel=1e-2,
                                                          abs=0.05)
            assert timing["peak_mib"] > 0
        assert r["ratio"] > 0 and r["ratio_cpu"] > 0


def test_the_check_catches_a_different_step(benchmark_script, capsys, monkeypatch):
    import dataclasses

    step_time = benchmark_script("step_time")
    original = step_time.hyper_from
    monkeypatch.setattr(step_time, "hyper_from", lambda trainer: dataclasses.replace(original(trainer), eps=0.1))
    code, summary = run(step_time, capsys, "--preset", "pgd_at")
    assert code == 1
    (result,) = summary["results"]
    assert not result["check"]["same"] and "framework" not in result  # not timed unless --no-check


def test_a_method_without_plain_loop_is_timed_alone(benchmark_script, capsys):
    step_time = benchmark_script("step_time")
    code, summary = run(step_time, capsys, "--recipe", str(step_time.RECIPES / "trades.toml"))
    (result,) = summary["results"]
    assert code == 0 and not result["plain_loop"] and "trades_kl" in result["plain_loop_missing"]
    assert result["framework"]["ms_per_step"] > 0 and "plain" not in result and "ratio" not in result


def test_text_report(benchmark_script, capsys):
    step_time = benchmark_script("step_time")
    assert step_time.main([*TINY[:-1], "--preset", "rslad+igdm", "--set", "optim.momentum=0.5"]) == 0
    out = capsys.readouterr().out
    assert "rslad+igdm" in out and "ratio framework/plain" in out and "same" in out
    assert "--set optim.momentum=0.5" in out


def test_paired_ratio_is_the_median_of_the_rounds_ratios(benchmark_script):
    step_time = benchmark_script("step_time")
    assert step_time.paired_ratio([2.0, 3.0, 10.0], [1.0, 3.0, 4.0]) == 2.0
