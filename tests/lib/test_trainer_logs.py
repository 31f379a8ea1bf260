"""Progress from the Flux trainer's logs: only its own bar counts, read from the tail."""

from lib.sync.trainer_logs import TAIL_CHARS, TrainerProgress, parse_progress

HEAD = (
    "Downloaded base weights in 26.6 seconds\n"
    "Extracted 5 files from zip to input_images\n"
    "100%|██████████| 5/5 [00:00<00:00, 12.30it/s]\n"
    "Caching latents: 100%|██████████| 5/5 [00:01<00:00,  4.10it/s]\n"
)


def bar(step: int, total: int = 1000) -> str:
    percent = step * 100 // total
    return (
        f"flux_train_replicate:  {percent}%|███▍      | {step}/{total} "
        f"[06:10<10:30,  1.05s/it, lr: 4.0e-04 loss: 2.472e-01]\n"
    )


def test_decoy_bars_before_training_are_not_progress():
    assert parse_progress(HEAD) is None


def test_the_latest_trainer_line_wins():
    logs = HEAD + bar(0) + bar(120) + bar(370)

    assert parse_progress(logs) == TrainerProgress(step=370, total_steps=1000, eta_seconds=630)


def test_a_real_line_from_a_flux_training_parses():
    line = (
        "flux_train_replicate:  83%|████████▎ | 2482/3000 "
        "[43:27<09:04,  1.05s/it, lr: 4.0e-04 loss: 2.472e-01]"
    )

    assert parse_progress(line) == TrainerProgress(step=2482, total_steps=3000, eta_seconds=544)


def test_the_first_line_has_a_step_and_a_total_but_no_eta_yet():
    line = "flux_train_replicate:   0%|          | 0/1000 [00:00<?, ?it/s]\n"

    assert parse_progress(HEAD + line) == TrainerProgress(0, 1000, eta_seconds=None)


def test_an_eta_of_an_hour_or_more_has_hours():
    line = "flux_train_replicate:  10%|█         | 400/4000 [09:10<1:22:31,  1.37s/it]\n"

    assert parse_progress(line) == TrainerProgress(400, 4000, eta_seconds=4951)


def test_a_line_cut_before_its_times_still_gives_the_step():
    line = "flux_train_replicate:  37%|███▋      | 370/1000"

    assert parse_progress(line) == TrainerProgress(370, 1000, eta_seconds=None)


def test_percent_is_whole_and_held_below_100_until_success():
    assert TrainerProgress(370, 1000).percent == 37
    assert TrainerProgress(1000, 1000).percent == 99
    assert TrainerProgress(0, 0).percent == 0


def test_only_the_tail_is_scanned():
    logs = bar(900) + "x" * TAIL_CHARS

    assert parse_progress(logs) is None


def test_empty_logs_have_no_progress():
    assert parse_progress("") is None
    assert parse_progress(None) is None
