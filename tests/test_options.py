"""Options are declared once, typed, and checked before any hook runs: bad counts, prompts and guidance get
one clear line in the CLI and in the Python API, never a traceback or a silently wrong picture."""

import subprocess
import sys

import numpy as np
import pytest

import zoo
from zoo.__main__ import main
from zoo.core.recipes import options as options_module
from zoo.core.recipes.options import COMMANDS, Option, call_declared, command_options, resolve
from zoo.core.recipes.registry import get_recipe, model_names
from zoo.core.runtime.errors import BadInputError

# (command, model, flag, value, what the error says): every count the issue found crashing or passing
BAD_VALUES = [
    ("evaluate", "gan", "--num-samples", "0", "--num-samples: must be at least 1, got 0"),
    ("evaluate", "gan", "--num-samples", "-5", "--num-samples: must be at least 1, got -5"),
    ("evaluate", "clip", "--limit", "0", "--limit: must be at least 1, got 0"),
    ("evaluate", "wavenet", "--per-pair", "0", "--per-pair: must be at least 1, got 0"),
    ("sample", "clip", "--limit", "0", "--limit: must be at least 1, got 0"),
    ("sample", "clip", "--limit", "-3", "--limit: must be at least 1, got -3"),
    ("sample", "dcgan", "--num", "0", "--num: must be at least 1, got 0"),
    ("sample", "diffusion", "--guidance", "-5", "--guidance: must be at least 0.0, got -5.0"),
    ("sample", "text2image", "--guidance", "-2", "--guidance: must be at least 0.0, got -2.0"),
    ("sample", "diffusion", "--digit", "12", "--digit: must be at most 9, got 12"),
    ("sample", "gpt", "--top-p", "1.5", "--top-p: must be at most 1.0, got 1.5"),
    ("sample", "gpt", "--top-p", "0", "--top-p: must be more than 0.0, got 0.0"),
    ("train", "dcgan", "--learning-rate", "0", "--learning-rate: must be more than 0.0, got 0.0"),
    ("sample", "clip", "--prompt", "", "--prompt: is empty: give at least one character"),
    ("sample", "text2image", "--prompt", "", "--prompt: is empty: give at least one character"),
    ("sample", "gpt", "--prompt", "", "--prompt: is empty: give at least one character"),
    ("train", "gpt", "--warmup-steps", "0", "--warmup-steps: must be at least 1, got 0"),
    ("sample", "flow", "--temperature", "nan", "--temperature: must be a finite number, got nan"),
]


@pytest.mark.parametrize("command, name, flag, value, message", BAD_VALUES,
                         ids=[f"{c}-{n}{f}={v}" for c, n, f, v, _ in BAD_VALUES])
def test_the_cli_refuses_a_bad_value_in_one_line(command, name, flag, value, message, capsys):
    assert main([command, name, flag, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow  # spawns the CLI
@pytest.mark.parametrize("name", ["clip", "text2image", "gpt", "charrnn"])
def test_a_prompt_that_is_not_utf8_is_refused_in_one_line(name):
    """A terminal passes undecodable bytes as surrogates; encoding them used to raise deep inside."""
    result = subprocess.run([sys.executable, "-m", "zoo", "sample", name, "--prompt", b"abc\xe4\xb8"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--prompt: is not valid UTF-8" in result.stderr and "Traceback" not in result.stderr


def test_the_python_api_checks_the_same_way():
    with pytest.raises(BadInputError, match="--num-samples must be at least 1, got 0"):
        zoo.evaluate("gan", num_samples=0)
    with pytest.raises(BadInputError, match="--guidance must be at least 0.0"):
        zoo.sample("diffusion", guidance=-1.0)
    with pytest.raises(BadInputError, match="gan has no option --prompt for sample"):
        zoo.sample("gan", prompt="seven")
    with pytest.raises(BadInputError, match="--variant int8 is a TFLite file"):
        zoo.sample("dcgan", runtime="savedmodel", variant="int8")


def test_every_count_option_declares_a_minimum():
    """A count (an int option named like one) without a minimum is how `--num-samples 0` crashed."""
    counts = ("num", "limit", "per_", "samples", "steps", "windows", "bytes", "epochs", "images", "size",
              "tokens", "threads", "version", "every")
    for name in model_names():
        recipe = get_recipe(name)
        for command in COMMANDS:
            for option in command_options(recipe, command).values():
                if option.type is int and any(c in option.name for c in counts) and option.name != "seed":
                    assert option.minimum is not None, (name, command, option.flag)


def test_each_option_is_declared_once_per_command_and_every_hook_takes_what_is_declared():
    import inspect

    train_hooks = ("create_training_model", "training_data", "training_config")
    hooks = {"train": train_hooks, "finetune": ("export_plan",), "export": ("export_plan",),
             "sample": ("sample",), "evaluate": ("evaluate",)}
    for name in model_names():
        recipe = get_recipe(name)
        for command in COMMANDS:
            declared = [o.name for o in recipe.options if command in o.commands]
            assert len(declared) == len(set(declared)), (name, command)
            command_options(recipe, command)  # refuses a model option named like a core one
            taken = set()
            for hook in hooks[command]:
                taken |= set(inspect.signature(getattr(recipe, hook)).parameters)
            assert set(declared) <= taken, (name, command, set(declared) - taken)


def test_defaults_are_the_declared_ones_and_the_models_own():
    gpt = get_recipe("gpt")
    values = resolve(gpt, "train", {})
    assert values["epochs"] == gpt.defaults["epochs"] and values["steps"] is None
    core_epochs = next(o.default for o in options_module.CORE_OPTIONS if o.name == "epochs")
    assert resolve(get_recipe("flow"), "train", {})["epochs"] == get_recipe("flow").defaults.get("epochs", core_epochs)
    assert resolve(gpt, "sample", {"temperature": 0})["temperature"] == 0.0


def test_call_declared_passes_only_what_the_hook_names():
    def hook(model, *, digit):
        return digit

    assert call_declared(hook, "m", digit=3, other=4) == 3
    assert call_declared(lambda model, **rest: sorted(rest), "m", a=1, b=2) == ["a", "b"]


def test_option_checks():
    count = Option("num", int, 1, "how many", minimum=1)
    assert count.check("7") == 7 and count.check(None) is None
    with pytest.raises(BadInputError, match="--num must be an integer, got 2.5"):
        count.check(2.5)
    prompt = Option("prompt", str, "x", "text", text=True)
    with pytest.raises(BadInputError, match="not valid UTF-8"):
        prompt.check("abc\udce4")
    with pytest.raises(BadInputError, match="is empty"):
        prompt.check("   ")
    assert Option("on", bool).check(1) is True


def test_clip_says_how_many_digits_it_drew(tmp_path, capsys):
    """`sample clip --limit 5 --num 16` used to say 16 while the picture held 5."""
    from tests.conftest import has_mnist

    if not has_mnist():
        pytest.skip("needs MNIST: set ZOO_DATA_DIR")
    output = str(tmp_path / "clip.png")
    assert main(["sample", "clip", "--limit", "5", "--num", "16", "--output", output]) == 0
    said = capsys.readouterr().out
    assert "the 5 test digits" in said and "the 16" not in said


def test_unknown_model_is_refused_before_tensorflow_loads():
    code = ("import sys\nfrom zoo.__main__ import main\ncode = main(['sample', 'nosuch'])\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "unknown model 'nosuch'" in result.stderr


def test_runner_refuses_negative_guidance_in_every_runtime():
    runner = zoo.load("diffusion", runtime="tflite")
    with pytest.raises(BadInputError, match="guidance"):
        runner("denoise_step", images_t=np.zeros((1, 28, 28, 1), np.float32), timestep=np.zeros(1, np.int32),
               labels=np.zeros(1, np.int32), guidance=np.full(1, -1.0, np.float32))


@pytest.mark.parametrize("name", ["text2image", "clip"])
def test_a_too_long_prompt_is_refused_in_one_closed_sentence(name, capsys):
    assert main(["sample", name, "--prompt", "七" * 30]) == 2
    err = capsys.readouterr().err
    assert 'the prompt "七七七七七七七七七七七七七七七七七七七七七七七七…" is 90 bytes in UTF-8' in err
    assert "at most 64" in err and "text 0" not in err and "Traceback" not in err
