"""The command registry: a command is a function, its parser built from its signature.

``@command("trial", "show")`` registers a function as ``scorer trial show``. Its parameters
are the command's arguments, by the rules of :func:`_argument`: a parameter before ``*`` is
a positional argument, a keyword-only one an option (``--name-with-dashes``, required when it
has no default); ``bool`` is a flag, ``X | None`` optional, ``list[X]`` repeatable (or
``nargs``), a ``Literal`` or an ``Enum`` gives the choices. ``Annotated[X, Opt(...)]`` adds
what a type cannot say: help, metavar, an option's other name, choices taken from the domain.
A parameter whose type is an :class:`OptionSet` stands for that set's options (the shared
``--db``/``--user``/``--password-stdin``), added where the parameter is.

The docstring's first paragraph is the command's help (one line in its group's list), the
paragraphs after it its description, and an ``Args:`` section the help of each parameter.

Each command's arguments are added to its parser on first use (:class:`Subcommands`), so a
choice the domain gives (roles, designs, methods) is imported only by the command that runs.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import re
import types
from collections.abc import Callable, ItemsView, Iterator, Sequence, ValuesView
from dataclasses import MISSING, dataclass, fields
from functools import cached_property
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

CommandFunc = Callable[..., int]


@dataclass(frozen=True)
class Opt:
    """What a parameter's name, type and default do not say of its argument.

    ``flag`` is an option's name when it is not ``--`` and the parameter's name with dashes
    (``--from`` for ``visit_from``); ``choices`` a sequence or a function returning one, and
    ``metavar`` a text or a function returning one (called when the command's parser is
    built); ``nargs`` replaces the rule for lists.
    """

    help: str | None = None
    metavar: str | Callable[[], str] | None = None
    flag: str | None = None
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    nargs: str | None = None


class OptionSet:
    """Options several commands share, as a dataclass whose fields are options: a command
    parameter annotated with the set adds them all at its place and receives the set."""


@dataclass(frozen=True)
class Group:
    """A command with subcommands (``scorer trial ...``); ``dest`` names the subcommand."""

    name: str
    help: str
    dest: str


@dataclass(frozen=True)
class _Argument:
    """One ``add_argument`` call, and how its parsed value becomes the parameter's value."""

    name: str
    flags: tuple[str, ...]
    kwargs: dict[str, Any]
    convert: Callable[[Any], Any] | None = None

    def value(self, ns: argparse.Namespace) -> Any:
        raw = getattr(ns, self.name)
        if self.convert is None or raw is None:
            return raw
        return [self.convert(v) for v in raw] if isinstance(raw, list) else self.convert(raw)


@dataclass(frozen=True)
class _Param:
    """A function parameter: one argument, or an option set standing for several."""

    name: str
    arguments: tuple[_Argument, ...]
    option_set: type[OptionSet] | None = None

    def value(self, ns: argparse.Namespace) -> Any:
        if self.option_set is None:
            return self.arguments[0].value(ns)
        return self.option_set(**{a.name: a.value(ns) for a in self.arguments})


@dataclass
class Command:
    """A registered command: its words, its function and how its group lists it."""

    path: tuple[str, ...]
    func: CommandFunc
    listed: bool = True
    epilog: str | None = None
    on_usage_error: Callable[[str], int] | None = None

    @cached_property
    def _doc(self) -> tuple[list[str], dict[str, str]]:
        return parse_docstring(self.func.__doc__ or "")

    def parser_kwargs(self) -> dict[str, Any]:
        """``add_parser`` keywords: help (when listed), description, epilog."""
        paragraphs = self._doc[0]
        kwargs: dict[str, Any] = {}
        if self.listed and paragraphs:
            kwargs["help"] = paragraphs[0]
        if len(paragraphs) > 1:
            kwargs["description"] = " ".join(paragraphs[1:])
        if self.epilog is not None:
            kwargs["epilog"] = self.epilog
        return kwargs

    @cached_property
    def params(self) -> tuple[_Param, ...]:
        hints = get_type_hints(self.func, include_extras=True)
        docs = self._doc[1]
        found = []
        for p in inspect.signature(self.func).parameters.values():
            hint = hints[p.name]
            if isinstance(hint, type) and issubclass(hint, OptionSet):
                found.append(_Param(p.name, tuple(_option_set_arguments(hint)), hint))
                continue
            default = MISSING if p.default is inspect.Parameter.empty else p.default
            keyword = p.kind is inspect.Parameter.KEYWORD_ONLY
            found.append(_Param(p.name, (_argument(p.name, hint, default, keyword, docs),)))
        return tuple(found)

    def fill(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments to its parser, and the function that runs it."""
        for param in self.params:
            for a in param.arguments:
                parser.add_argument(*a.flags, **a.kwargs)
        parser.set_defaults(func=self.run)
        if self.on_usage_error is not None:
            parser.on_usage_error = self.on_usage_error  # type: ignore[attr-defined]

    def run(self, ns: argparse.Namespace) -> int:
        """Call the function with the parsed arguments."""
        return self.func(**{p.name: p.value(ns) for p in self.params})


class _Parsers(dict[str, argparse.ArgumentParser]):
    """Subcommand parsers by name, each given its arguments the first time it is used."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        parser = super().__getitem__(name)
        fill = self.pending.pop(name, None)
        if fill is not None:
            fill(parser)
        return parser

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def values(self) -> ValuesView[argparse.ArgumentParser]:  # type: ignore[override]
        return {n: self[n] for n in self}.values()

    def items(self) -> ItemsView[str, argparse.ArgumentParser]:  # type: ignore[override]
        return {n: self[n] for n in self}.items()


class Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """argparse's subcommands, whose parsers get their arguments on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsers = _Parsers()
        self._name_parser_map = self.choices = self._parsers

    def add_lazy(
        self, name: str, fill: Callable[[argparse.ArgumentParser], None], **kwargs: Any
    ) -> argparse.ArgumentParser:
        """A subcommand whose arguments ``fill`` adds when it is first used."""
        parser: argparse.ArgumentParser = self.add_parser(name, **kwargs)
        self._parsers.pending[name] = fill
        return parser


class Registry:
    """Commands by their words, and the groups they belong to, in the order declared."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.commands: dict[tuple[str, ...], Command] = {}

    def group(self, name: str, help: str, dest: str) -> Group:
        """Declare a command with subcommands, registered with ``@command(name, ...)``."""
        g = self.groups[name] = Group(name, help, dest)
        return g

    def command(
        self,
        *path: str,
        listed: bool = True,
        epilog: str | None = None,
        on_usage_error: Callable[[str], int] | None = None,
    ) -> Callable[[CommandFunc], CommandFunc]:
        """Register the function as the command ``scorer PATH...``.

        ``listed=False``: its group names it among its choices without a line of help.
        ``on_usage_error``: says a usage error of this command (given the message) and returns
        its exit status, instead of exit 2 (a monitoring plugin's own codes).
        """
        if not 1 <= len(path) <= 2 or (len(path) == 2 and path[0] not in self.groups):
            raise ValueError(f"{' '.join(path)}: a command, or a declared group and a subcommand")

        def register(func: CommandFunc) -> CommandFunc:
            if path in self.commands:
                raise ValueError(f"scorer {' '.join(path)} is registered twice")
            self.commands[path] = Command(path, func, listed, epilog, on_usage_error)
            return func

        return register

    def usage_error_of(self, argv: Sequence[str]) -> Callable[[str], int] | None:
        """The usage-error handler of the top-level command ``argv`` starts with, if it has
        one (for refusals made before argparse runs)."""
        found = self.commands.get(tuple(argv[:1]))
        return found.on_usage_error if found is not None else None

    def top_level_names(self) -> set[str]:
        """The first words of the registered commands."""
        return {path[0] for path in self.commands}

    def add_command(self, sub: Subcommands, name: str) -> None:
        """Add the command (or the group of commands) ``scorer NAME`` to ``sub``."""
        g = self.groups.get(name)
        if g is None:
            cmd = self.commands[(name,)]
            sub.add_lazy(name, cmd.fill, **cmd.parser_kwargs())
            return
        members = [c for path, c in self.commands.items() if path[0] == name and len(path) == 2]

        def fill(parser: argparse.ArgumentParser) -> None:
            inner = parser.add_subparsers(dest=g.dest, required=True, action=Subcommands)
            assert isinstance(inner, Subcommands)
            for c in members:
                inner.add_lazy(c.path[1], c.fill, **c.parser_kwargs())

        sub.add_lazy(name, fill, help=g.help)


#: The scorer command line's commands (each command module registers its own here).
REGISTRY = Registry()
group = REGISTRY.group
command = REGISTRY.command


# ------------------------------------------------------------------ parameters to arguments


def _option_set_arguments(cls: type[OptionSet]) -> Iterator[_Argument]:
    hints = get_type_hints(cls, include_extras=True)
    docs: dict[str, str] = {}
    for c in reversed(cls.__mro__):
        docs.update(parse_docstring(c.__doc__ or "")[1] if issubclass(c, OptionSet) else {})
    for f in fields(cls):  # type: ignore[arg-type]
        yield _argument(f.name, hints[f.name], f.default, True, docs)


def _split_annotated(hint: Any) -> tuple[Any, Opt]:
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        return base, next((e for e in extras if isinstance(e, Opt)), Opt())
    return hint, Opt()


def _split_optional(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        kept = [a for a in get_args(hint) if a is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return hint


def _choices(
    base: Any, opt: Opt
) -> tuple[tuple[Any, ...] | None, Any, Callable[[Any], Any] | None]:
    """(choices, the value's type, a conversion after parsing) of a parameter's type."""
    if opt.choices is not None:
        choices = tuple(opt.choices() if callable(opt.choices) else opt.choices)
        return choices, base, None
    if get_origin(base) is Literal:
        choices = get_args(base)
        return choices, type(choices[0]), None
    if isinstance(base, type) and issubclass(base, enum.Enum):
        values = tuple(m.value for m in base)
        return values, type(values[0]), base
    return None, base, None


def _argument(name: str, hint: Any, default: Any, keyword: bool, docs: dict[str, str]) -> _Argument:
    """The argument of one parameter (see the module's docstring for the rules)."""
    base, opt = _split_annotated(hint)
    base = _split_optional(base)
    kwargs: dict[str, Any] = {}
    convert = None
    if base is bool:
        kwargs["action"] = "store_true"
    else:
        if get_origin(base) in (list, tuple, Sequence):
            base = get_args(base)[0]
            if opt.nargs is not None:
                kwargs["nargs"] = opt.nargs
            elif keyword:
                kwargs["action"] = "append"
            else:
                kwargs["nargs"] = "+" if default is MISSING else "*"
        elif opt.nargs is not None:
            kwargs["nargs"] = opt.nargs
        elif not keyword and default is not MISSING:
            kwargs["nargs"] = "?"
        choices, value_type, convert = _choices(base, opt)
        if value_type is not str:
            kwargs["type"] = value_type
        if choices is not None:
            kwargs["choices"] = choices
        if default is not MISSING and default is not None:  # None is argparse's own default
            kwargs["default"] = default
        elif default is MISSING and keyword:
            kwargs["required"] = True
    if opt.metavar is not None:
        kwargs["metavar"] = opt.metavar() if callable(opt.metavar) else opt.metavar
    help_text = opt.help if opt.help is not None else docs.get(name)
    if help_text is not None:
        kwargs["help"] = help_text
    if not keyword:
        return _Argument(name, (name,), kwargs, convert)
    kwargs["dest"] = name
    return _Argument(name, (opt.flag or "--" + name.replace("_", "-"),), kwargs, convert)


# ------------------------------------------------------------------ docstrings

_ARG_ENTRY = re.compile(r"(\w+):\s*(.*)")


def parse_docstring(doc: str) -> tuple[list[str], dict[str, str]]:
    """(the paragraphs before ``Args:``, each on one line; the help of each ``Args:`` entry,
    an entry being ``name: text`` with its text's further lines indented deeper)."""
    head, *rest = re.split(r"^Args:[ \t]*$", inspect.cleandoc(doc), maxsplit=1, flags=re.M)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", head) if p.strip()]
    entries: dict[str, str] = {}
    lines = [line for line in (rest[0] if rest else "").splitlines() if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
    current = ""
    for line in lines:
        m = _ARG_ENTRY.fullmatch(line.strip())
        if m and len(line) - len(line.lstrip()) == indent:
            current = m.group(1)
            entries[current] = m.group(2)
        elif current:
            entries[current] += " " + line.strip()
    return paragraphs, entries
