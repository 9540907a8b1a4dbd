"""Fuzzing with hypothesis.

- The French recognizers agree with python-stdnum, on valid identifiers built with stdnum's own check
  digit functions (and Luhn, and the IBAN's ISO 7064) and on mutations of them (a digit changed, two
  digits swapped, a digit dropped or added): the recognizer reports the entity exactly when stdnum says
  the value is valid. The scanner's bulk detector, which the column scan uses, agrees too.
- The manifest verifier and the policy parser, given arbitrary input, answer or raise the project's own
  errors (``ConfigError`` and its subclasses: ``PolicyError``, ``DatasetFileError``...), never anything else.

Examples are derandomised (the same on every run) and their number is bounded by HARDENING_SCALE;
no example database is written.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from stdnum import iban, luhn
from stdnum.fr import nir, siren, siret, tva

from tests.hardening.support_inputs import corpus, full_scale

EXAMPLES = 2000 if full_scale() else 150
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

# ------------------------------------------------------------------------------------------------
# identifiers: valid ones from stdnum's check digits, then mutated


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=string.digits, min_size=n, max_size=n)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> tuple[str, str]:
    """(the mutation applied, the value): a valid value, or one mutation of it."""
    value = draw(valid)
    kind = draw(st.sampled_from(["none", "substitute", "transpose", "delete", "insert", "substitute_twice"]))
    positions = [i for i, c in enumerate(value) if c.isdigit()]
    i = draw(st.sampled_from(positions))
    if kind == "substitute":
        value = value[:i] + draw(st.sampled_from([d for d in string.digits if d != value[i]])) + value[i + 1 :]
    elif kind == "substitute_twice":
        for j in (i, draw(st.sampled_from(positions))):
            value = value[:j] + draw(st.sampled_from(string.digits)) + value[j + 1 :]
    elif kind == "transpose" and i + 1 < len(value) and value[i + 1].isdigit():
        value = value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    elif kind == "delete":
        value = value[:i] + value[i + 1 :]
    elif kind == "insert":
        value = value[:i] + draw(st.sampled_from(string.digits)) + value[i:]
    return kind, value


@st.composite
def valid_nir(draw: st.DrawFn) -> str:
    department = draw(st.one_of(digits(2).filter(lambda d: d not in ("2A", "2B")), st.sampled_from(["2A", "2B"])))
    body = draw(st.sampled_from("12478")) + draw(digits(2)) + draw(digits(2)) + department + draw(digits(6))
    return body + nir.calc_check_digits(body)


@st.composite
def valid_siren(draw: st.DrawFn) -> str:
    body = draw(digits(8))
    return body + luhn.calc_check_digit(body)


@st.composite
def valid_siret(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:  # La Poste's establishments: the digit sum is a multiple of 5, not Luhn
        head = "356000000" + draw(digits(4))
        last = (5 - sum(map(int, head)) % 5) % 5 + draw(st.sampled_from([0, 5]))
        return head + str(last)
    body = draw(valid_siren()) + draw(digits(4))
    return body + luhn.calc_check_digit(body)


@st.composite
def valid_iban(draw: st.DrawFn) -> str:
    bank, branch, account = draw(digits(5)), draw(digits(5)), draw(digits(11))
    rib_key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    bban = f"{bank}{branch}{account}{rib_key:02d}"
    return f"FR{iban.calc_check_digits('FR00' + bban)}{bban}"


@st.composite
def valid_vat(draw: st.DrawFn) -> str:
    number = draw(valid_siren())
    return f"FR{int(number + '12') % 97:02d}{number}"


def grouped(value: str, sizes: list[int], sep: str = " ") -> str:
    out, at = [], 0
    for size in sizes:
        out.append(value[at : at + size])
        at += size
    out.append(value[at:])
    return sep.join(p for p in out if p)


# the entity, the recognizer, stdnum's verdict, a context sentence, how people write it
IDENTIFIERS: dict[str, tuple[str, Any, Any, str, list[int]]] = {
    "FR_NIR": ("FrNirRecognizer", valid_nir(), nir.is_valid, "numéro de sécurité sociale {}", [1, 2, 2, 2, 3, 3]),
    "FR_SIREN": ("FrSirenRecognizer", valid_siren(), siren.is_valid, "entreprise SIREN {}", [3, 3]),
    "FR_SIRET": ("FrSiretRecognizer", valid_siret(), siret.is_valid, "établissement SIRET {}", [3, 3, 3]),
    "FR_IBAN": ("FrIbanRecognizer", valid_iban(), iban.is_valid, "IBAN {}", [4, 4, 4, 4, 4, 4]),
    "FR_VAT": ("FrVatRecognizer", valid_vat(), tva.is_valid, "TVA intracommunautaire {}", [2, 2, 3, 3]),
}


def _recognizer(name: str) -> Any:
    import charter_guardrails.checks.privacy.recognizers as recognizers

    return getattr(recognizers, name)()


@pytest.mark.parametrize("entity", sorted(IDENTIFIERS))
def test_recognizers_agree_with_stdnum_on_valid_and_mutated_values(entity: str) -> None:
    from charter_guardrails.checks.privacy.detector import get_detector

    class_name, valid, is_valid, sentence, groups = IDENTIFIERS[entity]
    recognizer, detector = _recognizer(class_name), get_detector()
    tally = {"valid": 0, "invalid": 0}

    @FUZZ
    @given(mutated(valid), st.booleans())
    def agree(case: tuple[str, str], spaced: bool) -> None:
        kind, value = case
        expected = bool(is_valid(value))
        if kind == "none":
            assert expected, f"stdnum rejects the generated {entity} {value}: the generator is wrong"
        written = grouped(value, groups) if spaced else value
        text = sentence.format(written)
        found = any(r.entity_type == entity for r in recognizer.analyze(text, [entity], None))
        assert found == expected, f"{entity} {written!r} ({kind}): recognizer {found}, stdnum {expected}"
        bulk = [h for h in detector.pattern_hits(text) if h.entity_type == entity and not h.suspect]
        assert bool(bulk) == expected, f"{entity} {written!r} ({kind}): scanner {bool(bulk)}, stdnum {expected}"
        tally["valid" if expected else "invalid"] += 1

    agree()
    assert tally["valid"] > EXAMPLES // 10, tally
    assert tally["invalid"] > EXAMPLES // 10, tally


# ------------------------------------------------------------------------------------------------
# the manifest verifier: arbitrary documents, signed or not

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
MANIFEST_KEYS = [
    "version",
    "dataset",
    "use_case",
    "dataset_name",
    "file_name",
    "location",
    "algorithm",
    "chunk_size",
    "created_at",
    "run_id",
    "format",
    "size_bytes",
    "row_count",
    "merkle_root",
    "leaf_count",
    "chunks",
    "schema_fingerprint",
    "key_id",
    "files",
]


@pytest.fixture(scope="module")
def manifest_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from charter_guardrails.checks.integrity.manifest import build_manifest
    from charter_guardrails.core.keys import key_id
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    root = tmp_path_factory.mktemp("manifests")
    data = root / "data.csv"
    data.write_text("a;b\n" + "".join(f"{i};{i * i}\n" for i in range(200)), encoding="utf-8")
    folder = root / "parts"
    folder.mkdir()
    key = Ed25519PrivateKey.generate()
    document = build_manifest(data, use_case="uc", dataset="ds", run_id="r", chunk_size=256)
    return {
        "file": data,
        "folder": folder,
        "key": key,
        "trusted": {key_id(key.public_key()): key.public_key()},
        "document": document,
    }


@st.composite
def manifest_documents(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A real manifest with some of its fields replaced by arbitrary JSON, removed, or added; or pure junk."""
    if draw(st.integers(0, 9)) == 0:
        junk = draw(JSON)
        return junk if isinstance(junk, dict) else {"junk": junk}
    document = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(MANIFEST_KEYS))
        action = draw(st.sampled_from(["replace", "remove", "chunk"]))
        if action == "remove":
            document.pop(key, None)
        elif action == "chunk" and isinstance(document.get("chunks"), list) and document["chunks"]:
            chunk = document["chunks"][draw(st.integers(0, len(document["chunks"]) - 1))]
            chunk[draw(st.sampled_from(["index", "offset", "length", "digest", "lines"]))] = draw(JSON)
        else:
            document[key] = draw(
                st.one_of(JSON, st.sampled_from([0, -1, 2**63, "sha256", "md5", "8M", "", "../x", "parquet_dir"]))
            )
    return document


def test_manifest_verifier_raises_only_its_own_errors(manifest_world: dict[str, Any]) -> None:
    from charter_guardrails.checks.integrity.manifest import SIGNATURE_CONTEXT, Outcome, canonical_json
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file
    from charter_guardrails.core.errors import ConfigError
    from charter_guardrails.core.keys import key_id, sign

    world = manifest_world
    kid = key_id(world["key"].public_key())
    outcomes: dict[str, int] = {}

    @FUZZ
    @given(
        manifest_documents(world["document"]),
        st.sampled_from(["signed", "unsigned", "other_key", "bad_base64"]),
        st.sampled_from(["file", "folder", "missing"]),
        st.one_of(JSON, st.integers()),
        st.one_of(JSON, st.integers()),
    )
    def verify(document: dict[str, Any], how: str, target: str, root: Any, size: Any) -> None:
        signed = {**document, "key_id": kid}
        try:
            signature = sign(SIGNATURE_CONTEXT + canonical_json(signed), world["key"])[0]
        except (
            TypeError,
            ValueError,
        ):  # not even JSON-serialisable as canonical: the signer refuses it, nothing to verify
            return
        if how == "unsigned":
            signature = signature[::-1]
        elif how == "bad_base64":
            signature = "!!not base64!!"
        snapshot = ManifestSnapshot(
            1,
            1,
            signed,
            signature,
            "not-trusted" if how == "other_key" else kid,
            signed.get("merkle_root") if how == "signed" else root,
            signed.get("size_bytes") if how == "signed" else size,
            signed.get("row_count"),
        )  # type: ignore[arg-type]
        path = {"file": world["file"], "folder": world["folder"], "missing": world["file"].with_name("absent.csv")}[
            target
        ]
        try:
            result = verify_file(path, snapshot, use_case="uc", dataset="ds", trusted_keys=world["trusted"], workers=1)
        except ConfigError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            return
        assert isinstance(result.outcome, Outcome)
        outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1

    verify()
    assert {"manifest_edited", "unknown_key"} <= set(outcomes), outcomes
    assert len(outcomes) >= 4, outcomes


def test_a_genuine_manifest_still_verifies(manifest_world: dict[str, Any]) -> None:
    """The fuzz above must not pass by refusing everything: the unmodified manifest is intact."""
    from charter_guardrails.checks.integrity.manifest import sign_manifest
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file

    signed = sign_manifest(manifest_world["document"], manifest_world["key"])
    snapshot = ManifestSnapshot(
        1,
        1,
        signed.document,
        signed.signature,
        signed.key_id,
        signed.document["merkle_root"],
        signed.document["size_bytes"],
        signed.document["row_count"],
    )
    result = verify_file(
        manifest_world["file"], snapshot, use_case="uc", dataset="ds", trusted_keys=manifest_world["trusted"]
    )
    assert result.intact, result.summary


# ------------------------------------------------------------------------------------------------
# the policy parser: arbitrary YAML, and the valid policy with fields replaced


KEY_PATHS = [
    "id",
    "title",
    "purpose",
    "legal_basis",
    "owner",
    "owner.email",
    "approvers",
    "alert_recipients",
    "dpo",
    "decision_support",
    "datasets",
    "datasets.0.id",
    "datasets.0.path",
    "datasets.0.format",
    "datasets.0.csv",
    "datasets.0.csv.encoding",
    "datasets.0.csv.separator",
    "datasets.0.csv.decimal",
    "datasets.0.suite",
    "datasets.0.table",
    "datasets.0.max_rows",
    "datasets.0.retention",
    "datasets.0.retention.days",
    "datasets.0.columns",
    "datasets.0.columns.0",
    "datasets.0.columns.0.name",
    "datasets.0.columns.2.pii_allowed",
    "datasets.0.columns.1.type",
    "model",
    "model.target",
    "privacy",
    "privacy.min_score",
    "equity",
    "drift",
    "footprint",
    "tags",
]
HOSTILE = st.sampled_from(
    [
        "../../etc/passwd",
        "/etc/passwd",
        "C:\\x",
        "utf-8\x00",
        "\x00",
        "a" * 10_000,
        "",
        " ",
        "é",
        "${HOME}",
        "{{ 7*7 }}",
        "!!python/object",
        -1,
        0,
        2**64,
        1e308,
        float("inf"),
        True,
        None,
        [],
        {},
        ["\x00"],
    ]
)


def _set_path(document: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    target = document
    for part in parts[:-1]:
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                return
            target = target[int(part)]
        else:
            target = target.setdefault(part, {})
        if not isinstance(target, (dict, list)):
            return
    last = parts[-1]
    if isinstance(target, list):
        if last.isdigit() and int(last) < len(target):
            target[int(last)] = value
    else:
        target[last] = value


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policies")


@example(text="[" * 5000 + "]" * 5000)
@example(text="a: " + "{b: " * 3000 + "1" + "}" * 3000)
@example(text="\ufeffid: x\n")
@example(text="id: &a [*a]\n")
@FUZZ
@given(text=st.one_of(st.text(max_size=400), st.text(alphabet="[]{}:,-&*!|>'\"\n #?ab1", max_size=400)))
def test_policy_parser_on_arbitrary_text(policy_dir: Path, text: str) -> None:
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import UseCasePolicy

    path = policy_dir / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    with pytest.raises(PolicyError):
        UseCasePolicy.from_file(path)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEY_PATHS), st.one_of(JSON, HOSTILE)), min_size=1, max_size=4), st.booleans())
def test_policy_parser_on_mutated_policies(policy_dir: Path, changes: list[tuple[str, Any]], as_yaml: bool) -> None:
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import UseCasePolicy

    document = corpus().base_policy()
    for path, value in changes:
        _set_path(document, path, value)
    target = policy_dir / "mutated.yaml"
    try:
        text = yaml.safe_dump(document, allow_unicode=True) if as_yaml else json.dumps(document, ensure_ascii=False)
    except (ValueError, yaml.YAMLError):  # e.g. inf in JSON: not a file anyone could write
        return
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        policy = UseCasePolicy.from_file(target)
    except PolicyError as exc:
        # A mutated policy may be valid or not, so pytest.raises does not fit: a refusal is fine if it is ours,
        # names the file and lists its errors.
        assert str(exc).startswith(str(target))  # noqa: PT017 - the input may be valid, see above
        assert exc.all_errors  # noqa: PT017 - the input may be valid, see above
        return
    assert policy.id  # accepted: it is a valid policy, then its datasets resolve inside the data folder or refuse
    for dataset in policy.datasets:
        if dataset.path is not None:
            assert ".." not in Path(dataset.path).parts
            assert not Path(dataset.path).is_absolute()
