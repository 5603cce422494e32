"""benchmarks/quality.py's table: targets, the kept sections of RESULTS.md; eval cut selection."""

import json

import numpy as np

from benchmarks import quality
from gsseg.eval.cuts import select_plateaus


def _rows():
    base = {"scene": "tabletop", "noise": "medium", "psnr": 30.0, "t_features": 12.0, "t_eval": 3.0}
    return [
        {
            **base,
            "objective": "input masks",
            "input_nc_mean": 0.61,
            "input_hier_miou_l1": 0.5,
            "input_hier_miou_l2": 0.7,
        },
        {
            **base,
            "objective": "contrastive",
            "nc_mean": 0.80,
            "input_nc_mean": 0.61,
            "nc_part": 0.50,
            "input_nc_part": 0.55,
            "si": 1.0,
            "vc": 0.96,
            "vc_gt": 0.98,
            "hier_miou_l1": 0.91,
            "hier_miou_l2": 0.80,
        },
        {**base, "objective": "clustering", "pq_scene": 0.70},
        {**base, "noise": "hard", "objective": "contrastive", "nc_mean": 0.5, "input_nc_mean": 0.45},
        {**base, "objective": "object-field", "error": "GssegError: boom"},
    ]


def test_targets_report_misses_by_how_much():
    md = quality.render_markdown(_rows(), quality.quick_suite(), 60.0, "quick")
    assert md.startswith(quality.BEGIN) and md.endswith(quality.END)
    assert "medium / contrastive: nc_mean - input_nc_mean = 0.190 (target ≥ 0.08) — met" in md
    assert "nc_part - input_nc_part = -0.050 (target ≥ 0.00) — **missed by 0.050**" in md
    assert "vc / vc_gt = 0.980 (target ≥ 0.97) — met" in md
    assert "hier_miou_l2 = 0.800 (target ≥ 0.85) — **missed by 0.050**" in md
    assert "pq_scene = 0.700 (target ≥ 0.70) — met" in md
    # hard noise: NC must beat its input by 0.08 there too
    assert "hard / contrastive: nc_mean - input_nc_mean = 0.050 (target ≥ 0.08) — **missed by 0.030**" in md
    assert md.count("missed by") == 3
    assert "failed: GssegError: boom" in md


def test_readme_summary_lists_each_scene_at_medium_noise(tmp_path):
    rows = _rows()
    rows[1]["seed_values"] = {"nc_mean": [0.78, 0.82]}
    md = quality.readme_summary(rows, quality.quick_suite())
    assert md.startswith(quality.README_BEGIN) and md.endswith(quality.README_END)
    assert "| tabletop | 30.00 dB | 0.610 | 0.800 ± 0.028 | – | – | – | 0.700 |" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{quality.README_BEGIN}\nold\n{quality.README_END}\ntail\n")
    quality.write_section(md, readme, quality.README_BEGIN, quality.README_END)
    text = readme.read_text()
    assert "old" not in text and "0.800 ± 0.028" in text and text.endswith("tail\n")


def test_results_file_keeps_other_sections_and_notes(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmarks\n\n## Render\nfast\n")
    quality.write_results(quality.render_markdown(_rows(), quality.quick_suite(), 1.0, "quick"), path)
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n## Render\nfast\n") and quality.BEGIN in text
    edited = text.replace("What was tried for missed targets: (edit here; kept across runs)", "tried a longer schedule")
    path.write_text(edited + "\n## Later section\n")
    notes = quality.previous_notes(path)
    assert "tried a longer schedule" in notes
    quality.write_results(quality.render_markdown(_rows()[:2], quality.quick_suite(), 2.0, "quick", notes), path)
    text = path.read_text()
    assert text.count(quality.BEGIN) == 1 and "tried a longer schedule" in text
    assert "## Render\nfast" in text and text.rstrip().endswith("## Later section")
    assert "clustering" not in text


def test_rows_average_over_feature_seeds_and_list_the_spread():
    runs = [{"pq_scene": 0.4, "miou": 0.6, "t_features": 10.0}, {"pq_scene": 0.7, "miou": 0.8, "t_features": 12.0}]
    averaged = quality.average_seeds(runs, [0, 1])
    assert abs(averaged["pq_scene"] - 0.55) < 1e-12 and abs(averaged["t_features"] - 11.0) < 1e-12
    assert averaged["seed_values"] == {"pq_scene": [0.4, 0.7]} and averaged["seeds"] == [0, 1]
    assert "seed_values" not in quality.average_seeds(runs[:1], [0])
    suite = quality.quick_suite()
    suite.feature_seeds = [0, 1]
    row = {"scene": "toys", "noise": "medium", "objective": "clustering", "psnr": 30.0, **averaged}
    md = quality.render_markdown([row], suite, 1.0, "quick")
    assert "feature seeds 0, 1 (rows are means)" in md
    assert "- toys / medium / clustering, seeds 0, 1: pq_scene 0.400 / 0.700 (sd 0.212)" in md
    assert "pq_scene = 0.550 (target ≥ 0.70) — **missed by 0.150**" in md


def test_select_plateaus_spreads_over_log_region_counts():
    regions = np.array([1, 2, 3, 4, 5, 8, 16, 32, 64, 128, 256, 512])
    lengths = np.ones(len(regions))
    assert list(select_plateaus(regions, lengths, 20)) == list(range(12))
    picked = select_plateaus(regions, lengths, 4)
    assert len(picked) == 4 and regions[picked[0]] == 1 and regions[picked[-1]] == 512
    assert len(set(picked.tolist())) == 4


def test_ladder_merges_per_scene_outputs_into_one_table(tmp_path, capsys):
    from benchmarks import ladder

    def out(scene: str, nc: float) -> dict:
        row = {"scene": scene, "rung": "3 medium", "objective": "contrastive", "mode": "3D", "seeds": 3}
        return {"rows": [{**row, "nc_mean": nc, "nc_mean_sd": 0.01, "nc_part": nc - 0.1}], "total_s": 60.0}

    paths = []
    for scene, nc in (("tabletop", 0.75), ("toys", 0.79)):
        paths.append(tmp_path / f"{scene}.json")
        paths[-1].write_text(json.dumps(out(scene, nc)))
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n")
    assert ladder.main(["--merge", *map(str, paths), "--seeds", "0,1,2", "--results", str(results)]) == 0
    text = results.read_text()
    assert text.count(ladder.BEGIN) == 1 and "Scenes tabletop, toys;" in text and "Total 2.0 min" in text
    assert "| NC | NC part |" in text
    assert "| tabletop | 3 medium | contrastive | 3D | 3 | 0.750 ± 0.010 | 0.650 |" in text
    assert "| toys | 3 medium | contrastive | 3D | 3 | 0.790 ± 0.010 | 0.690 |" in text
