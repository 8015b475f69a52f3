"""Linear hypotheses written as equations, for ``InferenceResult.wald_test``.

``parse_hypotheses("age = 0, 2 * 6:educ = income", terms, label_spellings)`` returns the
restriction matrix ``R`` and right-hand side ``q`` of ``R beta = q`` on the stacked
reference-form parameters (block by block, a block per non-reference class, ``terms`` within).
"""

from __future__ import annotations

import re

import numpy as np

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_hypotheses(text: str, terms: list, label_spellings: list):
    """``R``, ``q`` of the comma-separated linear equations in ``text``.

    Tokens are read left to right, a known name (longest first, so that names holding
    brackets, dots or operators as formula columns do are read whole) before a number or an
    operator. A bare term expands into one restriction per non-reference class.
    """
    names = {term: (None, j) for j, term in enumerate(terms)}
    for block, spellings in enumerate(label_spellings):
        for spelled in spellings:
            for j, term in enumerate(terms):
                names[f"{spelled}:{term}"] = (block, j)
    by_length = sorted(names, key=len, reverse=True)
    tokens, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        name = next((n for n in by_length if text.startswith(n, i)), None)
        if name is not None:
            tokens.append(("name", names[name]))
            i += len(name)
            continue
        number = _NUMBER.match(text, i)
        if number:
            tokens.append(("number", float(number.group())))
            i = number.end()
            continue
        if text[i] in "+-*=,":
            tokens.append((text[i], None))
            i += 1
            continue
        raise ValueError(
            f"Cannot read {text[i:i + 20]!r} in the hypothesis {text!r}: the terms are "
            f"{terms}, and 'level:term' names one class's coefficient (levels "
            f"{[min(spellings, key=len) for spellings in label_spellings]})."
        )
    equations, current = [], []
    for token in tokens + [(",", None)]:
        if token[0] == ",":
            if not current:
                raise ValueError(f"The hypothesis {text!r} has an empty equation.")
            equations.append(current)
            current = []
        else:
            current.append(token)
    n_terms, n_blocks = len(terms), len(label_spellings)
    rows, values = [], []
    for equation in equations:
        sides = [[]]
        for token in equation:
            if token[0] == "=":
                sides.append([])
            else:
                sides[-1].append(token)
        if len(sides) != 2 or not sides[0] or not sides[1]:
            raise ValueError(f"Each equation needs one '=' between two sides; got {text!r}.")
        generic = np.zeros(n_terms)
        specific = np.zeros((n_blocks, n_terms))
        constant = 0.0
        for side, sign in zip(sides, (1.0, -1.0), strict=True):
            for coefficient, target in _linear_terms(side, text):
                if target is None:
                    constant += sign * coefficient
                elif target[0] is None:
                    generic[target[1]] += sign * coefficient
                else:
                    specific[target] += sign * coefficient
        if not generic.any() and not specific.any():
            raise ValueError(f"An equation of {text!r} names no coefficient.")
        blocks = range(n_blocks) if generic.any() else [None]
        for block in blocks:
            row = specific.copy()
            if block is not None:
                row[block] += generic
            rows.append(row.ravel())  # block by block, the order of cov
            values.append(-constant)
    return np.array(rows), np.array(values)


def _linear_terms(tokens, text):
    """``(coefficient, name or None)`` of each summand of ``[+|-] [number [*]] [name]``."""
    terms, i = [], 0
    while i < len(tokens):
        sign = 1.0
        while i < len(tokens) and tokens[i][0] in "+-":
            sign *= -1.0 if tokens[i][0] == "-" else 1.0
            i += 1
        coefficient, target, has_number = sign, None, False
        if i < len(tokens) and tokens[i][0] == "number":
            coefficient *= tokens[i][1]
            has_number = True
            i += 1
            if i < len(tokens) and tokens[i][0] == "*":
                i += 1
                if i >= len(tokens) or tokens[i][0] != "name":
                    raise ValueError(f"'*' must be followed by a term in {text!r}.")
        if i < len(tokens) and tokens[i][0] == "name":
            target = tokens[i][1]
            i += 1
        elif not has_number:
            raise ValueError(f"Cannot read the equation in {text!r}.")
        terms.append((coefficient, target))
        if i < len(tokens) and tokens[i][0] not in "+-":
            raise ValueError(f"Expected '+' or '-' between summands in {text!r}.")
    return terms
