"""The refused submissions' fixes as Snakemake settings: profile entries to paste, and whole command lines.

A `--set-resources`, `--default-resources`, `--set-threads` or `--group-components` list given on the
command line replaces the profile's list of that name (Snakemake takes a profile's settings as argparse
defaults), so `--set-resources pretrain:cpus_per_task=2` alone would drop every other per-rule resource
of the profile (its GPUs, runtimes, slurm_extra). The fix is therefore said twice: as the profile entries
that change (each replaces the entry of that name in the user's copy of the profile), and as the complete
lists, the profile's (or the command line's) entries with the fixed values, to append to the command.

A fixed partition or account goes to default-resources where every submitted rule that takes the default
needs the same change (the default names no partition the cluster has); every other value goes to the
rule's set-resources entry (a group's to its members' rule; a group's runtime to group-components).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field

from hacm.campaign.preflight import GROUP_COMPONENTS, THREADS, Check

# the Snakemake options whose values are lists of entries, with the flags that give them
LIST_OPTIONS = {"default-resources": ("--default-resources", "--default-res"), "set-resources": ("--set-resources",),
                "set-threads": ("--set-threads",), "group-components": ("--group-components",)}
SITE_KEYS = ("slurm_partition", "slurm_account")  # may move every rule at once (default-resources)
NAMED_KEYS = SITE_KEYS + ("gpu_model", "gres")  # values that are names, not amounts
# names a resource expression is evaluated with (snakemake/resources.py Resource.from_cli_expression)
EVALUATED_NAMES = ("wildcards", "input", "attempt", "system_tmpdir", "shutil", "async_run", "threads")


def _command_line_list(argv: list[str], flags: tuple[str, ...]) -> list[str] | None:
    """The entries after the last of `flags` in argv (argparse keeps the last), or None."""
    found = None
    for here, word in enumerate(argv):
        name, equals, value = word.partition("=")
        if word in flags:
            found = []
            for following in argv[here + 1:]:
                if following.startswith("-"):
                    break
                found.append(following)
        elif equals and name in flags:
            found = [value]
    return found


def option_lists(argv: list[str], parser) -> dict[str, list[str]]:
    """Each list option's entries as the submission takes them: the command line's, else the (last)
    profile's (`parser`: Snakemake's argument parser after reading argv, which knows each setting's source)."""
    sources = parser.get_source_to_settings_dict()
    lists = {}
    for key, flags in LIST_OPTIONS.items():
        entries = _command_line_list(argv, flags)
        if entries is None:
            for source, settings in sources.items():
                if source.startswith("config_file") and key in settings:
                    value = settings[key][1]
                    entries = [str(item) for item in value] if isinstance(value, list) else [str(value)]
        lists[key] = entries or []
    return lists


@dataclass
class Fix:
    """Settings that change: default-resources, set-resources per rule, set-threads, group-components."""

    entries: dict[str, dict] = field(default_factory=lambda: {key: {} for key in LIST_OPTIONS})
    manual: list[str] = field(default_factory=list)  # what no setting fixes: "<rule>: <why>"

    def __bool__(self) -> bool:
        return any(self.entries.values())


def _lowest(values: dict, key: str, value) -> None:
    """Keep the smallest amount (a name: the first) that fits every submission of a rule."""
    if key in values and key not in NAMED_KEYS:
        values[key] = min(values[key], value)
    else:
        values.setdefault(key, value)


def _has_entry(entries: list[str], rule: str, key: str) -> bool:
    return any(entry.split("=", 1)[0].strip() == f"{rule}:{key}" for entry in entries)


def plan_fix(checks: list[Check], lists: dict[str, list[str]], groups: dict[str, str]) -> Fix:
    """The settings under which every refused submission fits where its check says (`groups`: rule ->
    group name, as --groups / the profile's groups give them)."""
    fix = Fix()
    per_rule: dict[str, dict] = {}
    for check in checks:
        if not check.refused:
            continue
        for shortfall in check.shortfalls:
            if not shortfall.fix:
                fix.manual.append(f"{', '.join(check.rules)}: {shortfall.text}")
        for key, value in check.fix.items():
            for rule in check.rules:
                if key == GROUP_COMPONENTS:
                    if rule in groups:
                        _lowest(fix.entries["group-components"], groups[rule], value)
                    else:
                        fix.manual.append(f"{rule}: its group's runtime exceeds the limit; make the group smaller")
                else:
                    _lowest(per_rule.setdefault(rule, {}), key, value)
    submitted_rules = {rule for check in checks for rule in check.rules}
    for key in SITE_KEYS:
        on_default = {rule for rule in submitted_rules if not _has_entry(lists["set-resources"], rule, key)}
        changed = {rule: values[key] for rule, values in per_rule.items() if key in values}
        if on_default and on_default <= changed.keys():
            value = Counter(changed[rule] for rule in sorted(on_default)).most_common(1)[0][0]
            fix.entries["default-resources"][key] = value
            for rule in on_default:
                if per_rule[rule][key] == value:
                    del per_rule[rule][key]
    # rules in the order the profile lists them, so that the entries read beside it
    listed = [re.split(r"[:=]", entry, maxsplit=1)[0] for entry in lists["set-resources"] + lists["set-threads"]]
    for rule in sorted(per_rule, key=lambda rule: listed.index(rule) if rule in listed else len(listed)):
        values = per_rule[rule]
        if THREADS in values:
            fix.entries["set-threads"][rule] = values.pop(THREADS)
        if values:
            fix.entries["set-resources"][rule] = values
    fix.manual = list(dict.fromkeys(fix.manual))
    return fix


def _evaluated_names() -> set[str]:
    import snakemake.ioutils

    namespace: dict = {}
    snakemake.ioutils.register_in_globals(namespace)  # lookup, branch, collect, ...
    return set(namespace) | set(EVALUATED_NAMES)


def _entry_value(value):
    """The value as Snakemake must read it: it evaluates a resource's text as Python first and keeps the
    text only where that fails, so a name Python knows (a partition called `max`) or a number-like name
    goes quoted."""
    if not isinstance(value, str):
        return value
    known = value.isidentifier() and (keyword.iskeyword(value) or hasattr(builtins, value)
                                      or value in _evaluated_names())
    try:
        literal = not isinstance(ast.literal_eval(value), str)
    except (ValueError, SyntaxError):
        literal = False
    return repr(value) if known or literal else value


def profile_entries(fix: Fix) -> dict:
    """The changed entries as a profile (config.yaml) writes them."""
    return {key: {name: ({inner: _entry_value(v) for inner, v in value.items()} if isinstance(value, dict)
                         else _entry_value(value)) for name, value in values.items()}
            for key, values in fix.entries.items() if values}


def _replaced(entries: list[str], changes: dict[str, object]) -> list[str]:
    """`entries` ("name=value") with the changed names' values replaced, new names appended."""
    result, done = [], set()
    for entry in entries:
        name = entry.split("=", 1)[0].strip()
        if name in changes:
            result.append(f"{name}={_entry_value(changes[name])}")
            done.add(name)
        else:
            result.append(entry)
    return result + [f"{name}={_entry_value(value)}" for name, value in changes.items() if name not in done]


def fix_arguments(fix: Fix, lists: dict[str, list[str]]) -> list[str]:
    """The options to append to the command: each changed list whole, the profile's entries kept."""
    changes = {
        "default-resources": fix.entries["default-resources"],
        "set-resources": {f"{rule}:{key}": value for rule, values in fix.entries["set-resources"].items()
                          for key, value in values.items()},
        "set-threads": fix.entries["set-threads"],
        "group-components": fix.entries["group-components"],
    }
    words: list[str] = []
    for key, changed in changes.items():
        if changed:
            words += [LIST_OPTIONS[key][0], *_replaced(lists[key], changed)]
    return words


def shell_words(words: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in words)
