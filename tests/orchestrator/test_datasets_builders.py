import json

import pytest
import torch

from orchestrator.datasets import (
    PackedDataset,
    alpaca_cleaned_dataset,
    alpaca_dataset,
    chat_dataset,
    instruct_dataset,
    text_completion_dataset,
)
from orchestrator.datasets.messages import ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT
from tests.orchestrator.datasets_tokenizer import ToyTokenizer, trained_text

TOK = ToyTokenizer()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def write_json(path, rows):
    path.write_text(json.dumps(rows))
    return str(path)


def all_text(sample):
    return TOK.decode(sample["tokens"])


ALPACA_ROWS = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Name a color.", "input": "", "output": "Blue"},
]


# ---- alpaca ------------------------------------------------------------------------------


def test_alpaca_template_with_and_without_input(tmp_path):
    ds = alpaca_dataset(TOK, source=write_jsonl(tmp_path / "a.jsonl", ALPACA_ROWS))
    assert len(ds) == 2
    with_input = ALPACA_PROMPT_INPUT.format(instruction="Add the numbers.", input="2 and 3")
    assert "### Input:\n2 and 3\n\n### Response:\n" in with_input
    assert all_text(ds[0]) == f"<user>{with_input}<assistant>5"
    no_input = ALPACA_PROMPT_NO_INPUT.format(instruction="Name a color.")
    assert "### Input" not in no_input
    assert all_text(ds[1]) == f"<user>{no_input}<assistant>Blue"
    assert ds[0]["tokens"][0] == TOK.bos_id and ds[0]["tokens"][-1] == TOK.eos_id


def test_alpaca_train_on_input_labels(tmp_path):
    source = write_jsonl(tmp_path / "a.jsonl", ALPACA_ROWS)
    # torchtune's alpaca default: the prompt takes loss too (only BOS is masked).
    on = alpaca_dataset(TOK, source=source)[0]
    assert on["labels"][0] == -100 and on["labels"][1:] == on["tokens"][1:]
    off = alpaca_dataset(TOK, source=source, train_on_input=False)[0]
    assert trained_text(off, TOK) == "<assistant>5"
    assert off["labels"][-1] == TOK.eos_id  # the reply's EOS is learned
    assert len(off["labels"]) == len(off["tokens"])


def test_alpaca_without_input_column_and_column_map_and_cleaned(tmp_path):
    rows = [{"q": "Say hi.", "a": "hi"}]
    source = write_jsonl(tmp_path / "a.jsonl", rows)
    ds = alpaca_dataset(TOK, source=source, column_map={"instruction": "q", "output": "a"})
    assert all_text(ds[0]).endswith("### Instruction:\nSay hi.\n\n### Response:\n<assistant>hi")
    cleaned = alpaca_cleaned_dataset(
        TOK, source=source, column_map={"instruction": "q", "output": "a"}
    )
    assert cleaned[0] == ds[0]
    with pytest.raises(
        ValueError, match=r"row 0 has no column 'inp'; columns present: \['a', 'q'\]"
    ):
        alpaca_dataset(
            TOK, source=source, column_map={"instruction": "q", "output": "a", "input": "inp"}
        )


# ---- instruct ----------------------------------------------------------------------------


def test_instruct_column_map_system_prompt_and_masking(tmp_path):
    source = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Q?", "response": "A."}])
    cmap = {"input": "prompt", "output": "response"}
    ds = instruct_dataset(TOK, source=source, column_map=cmap, new_system_prompt="Be brief.")
    sample = ds[0]
    assert all_text(sample) == "<system>Be brief.<user>Q?<assistant>A."
    assert trained_text(sample, TOK) == "<assistant>A."
    trained_all = instruct_dataset(TOK, source=source, column_map=cmap, train_on_input=True)[0]
    assert trained_text(trained_all, TOK) == "<user>Q?<assistant>A."


def test_instruct_missing_column_names_it_and_lists_present(tmp_path):
    source = write_jsonl(tmp_path / "d.jsonl", [{"input": "x", "output": "y"}, {"input": "z"}])
    with pytest.raises(ValueError) as err:
        instruct_dataset(TOK, source=source)
    message = str(err.value)
    assert "row 1 has no column 'output'" in message
    assert "columns present: ['input']" in message and "column_map" in message
    with pytest.raises(ValueError, match=r"column_map keys \['answer'\] are not columns"):
        instruct_dataset(TOK, source=source, column_map={"answer": "output"})


def test_empty_dataset_and_empty_after_filter(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"Dataset '.*empty\.jsonl' \(split 'train'\) has no rows"):
        instruct_dataset(TOK, source=str(empty))
    source = write_jsonl(tmp_path / "d.jsonl", [{"input": "x", "output": "y"}] * 3)
    with pytest.raises(ValueError, match="filter_fn removed all 3 rows"):
        instruct_dataset(TOK, source=source, filter_fn=lambda row: False)
    kept = instruct_dataset(TOK, source=source, filter_fn=lambda row: row["input"] == "x")
    assert len(kept) == 3


def test_filter_fn_sees_raw_rows(tmp_path):
    rows = [{"input": str(i), "output": "o", "keep": i % 2 == 0} for i in range(6)]
    ds = instruct_dataset(
        TOK, source=write_jsonl(tmp_path / "d.jsonl", rows), filter_fn=lambda row: row["keep"]
    )
    assert [all_text(ds[i]).split("<assistant>")[0] for i in range(len(ds))] == [
        "<user>0",
        "<user>2",
        "<user>4",
    ]


def test_truncation_to_max_seq_len(tmp_path):
    source = write_jsonl(tmp_path / "d.jsonl", [{"input": "x" * 50, "output": "y" * 50}])
    assert len(instruct_dataset(TOK, source=source)[0]["tokens"]) > 100
    cut = instruct_dataset(TOK, source=source, max_seq_len=16)[0]
    assert len(cut["tokens"]) == len(cut["labels"]) == 16
    by_tokenizer = instruct_dataset(ToyTokenizer(max_seq_len=20), source=source)[0]
    assert len(by_tokenizer["tokens"]) == 20
    with pytest.raises(ValueError, match="max_seq_len must be a positive"):
        instruct_dataset(TOK, source=source, max_seq_len=0)


# ---- chat --------------------------------------------------------------------------------


SHAREGPT = [
    {
        "conversations": [
            {"from": "system", "value": "Sys."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello"},
            {"from": "human", "value": "Bye"},
            {"from": "gpt", "value": "Ciao"},
        ]
    }
]
OPENAI = [
    {
        "messages": [
            {"role": "system", "content": "Sys."},
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
            },
            {"role": "tool", "content": "42"},
            {"role": "assistant", "content": "Done"},
        ]
    }
]


def test_sharegpt(tmp_path):
    source = write_jsonl(tmp_path / "c.jsonl", SHAREGPT)
    ds = chat_dataset(
        TOK, source=source, conversation_column="conversations", conversation_style="sharegpt"
    )
    sample = ds[0]
    assert all_text(sample) == "<system>Sys.<user>Hi<assistant>Hello<user>Bye<assistant>Ciao"
    assert trained_text(sample, TOK) == "<assistant>Hello<assistant>Ciao"
    replaced = chat_dataset(
        TOK,
        source=source,
        conversation_column="conversations",
        conversation_style="sharegpt",
        new_system_prompt="New.",
        train_on_input=True,
    )[0]
    assert all_text(replaced).startswith("<system>New.<user>Hi")
    assert "Sys." not in all_text(replaced)
    assert trained_text(replaced, TOK) == "<user>Hi<assistant>Hello<user>Bye<assistant>Ciao"


def test_openai(tmp_path):
    source = write_json(tmp_path / "c.json", OPENAI)
    sample = chat_dataset(
        TOK, source=source, conversation_column="messages", conversation_style="openai"
    )[0]
    assert all_text(sample) == "<system>Sys.<user>Hi<assistant>Hello<ipython>42<assistant>Done"
    assert trained_text(sample, TOK) == "<assistant>Hello<assistant>Done"


def test_chat_from_csv_cells_holding_json(tmp_path):
    path = tmp_path / "c.csv"
    cell = json.dumps(OPENAI[0]["messages"][:2] + [{"role": "assistant", "content": "ok"}])
    path.write_text('dialog\n"' + cell.replace('"', '""') + '"\n')
    sample = chat_dataset(
        TOK, source=str(path), conversation_column="dialog", conversation_style="openai"
    )[0]
    assert trained_text(sample, TOK) == "<assistant>ok"


def test_chat_unknown_role_and_style_and_bad_turns(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "x"}]}]
    source = write_jsonl(tmp_path / "c.jsonl", rows)
    ds = chat_dataset(
        TOK, source=source, conversation_column="conversations", conversation_style="sharegpt"
    )
    with pytest.raises(
        ValueError, match=r"row 0: Unknown role 'bot'.*allowed roles: system, human, gpt"
    ):
        ds[0]
    with pytest.raises(
        ValueError, match=r"Unknown conversation_style 'chatml'; supported: sharegpt, openai"
    ):
        chat_dataset(
            TOK, source=source, conversation_column="conversations", conversation_style="chatml"
        )
    openai_rows = [{"messages": [{"role": "robot", "content": "x"}]}]
    bad_openai = chat_dataset(
        TOK,
        source=write_jsonl(tmp_path / "o.jsonl", openai_rows),
        conversation_column="messages",
        conversation_style="openai",
    )
    with pytest.raises(
        ValueError, match=r"Unknown role 'robot'.*system, user, assistant, ipython, tool"
    ):
        bad_openai[0]
    no_value = [{"conversations": [{"from": "human", "text": "Hi"}]}]
    ds = chat_dataset(
        TOK,
        source=write_jsonl(tmp_path / "n.jsonl", no_value),
        conversation_column="conversations",
        conversation_style="sharegpt",
    )
    with pytest.raises(ValueError, match=r"lacks \['value'\]; it has \['from', 'text'\]"):
        ds[0]
    with pytest.raises(ValueError, match="row 0 has no column 'dialog'"):
        chat_dataset(
            TOK, source=source, conversation_column="dialog", conversation_style="sharegpt"
        )


# ---- text completion ---------------------------------------------------------------------


def test_text_completion(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world\n\nsecond doc\n")
    ds = text_completion_dataset(TOK, source=str(path))
    assert len(ds) == 2
    assert ds[0]["tokens"] == TOK.encode("hello world") and ds[0]["labels"] == ds[0]["tokens"]
    no_eos = text_completion_dataset(TOK, source=str(path), add_eos=False)
    assert no_eos[1]["tokens"] == TOK.encode("second doc", add_eos=False)
    cut = text_completion_dataset(TOK, source=str(path), max_seq_len=4)
    assert cut[0]["tokens"] == TOK.encode("hello world")[:4]
    doc = text_completion_dataset(TOK, source=str(path), sample_by="document")
    assert len(doc) == 1
    source = write_jsonl(tmp_path / "t.jsonl", [{"body": "abc"}])
    assert text_completion_dataset(TOK, source=source, column="body")[0]["tokens"] == TOK.encode(
        "abc"
    )
    with pytest.raises(ValueError, match=r"no column 'text'; columns present: \['body'\]"):
        text_completion_dataset(TOK, source=source)


# ---- packed builders ---------------------------------------------------------------------


def test_packed_builders(tmp_path):
    rows = [{"input": "ab", "output": "cd"}] * 5
    source = write_jsonl(tmp_path / "d.jsonl", rows)
    packed = instruct_dataset(TOK, source=source, packed=True, max_seq_len=32)
    assert isinstance(packed, PackedDataset)
    sample_len = len(instruct_dataset(TOK, source=source)[0]["tokens"])
    per_pack = 32 // sample_len
    assert len(packed) == -(-5 // per_pack)
    for pack in packed:
        assert pack["tokens"].shape == (32,)
        assert int(pack["seq_lens"].sum()) == 32
    with pytest.raises(ValueError, match="packed=True needs a pack length"):
        instruct_dataset(TOK, source=source, packed=True)
    by_tokenizer = instruct_dataset(ToyTokenizer(max_seq_len=24), source=source, packed=True)
    assert by_tokenizer[0]["tokens"].shape == (24,)

    text = tmp_path / "t.txt"
    text.write_text("abcdefghij\nklmnopqrst\n")
    stream = text_completion_dataset(TOK, source=str(text), packed=True, max_seq_len=8)
    flat = torch.cat([stream[i]["tokens"] for i in range(len(stream))]).tolist()
    # Split across packs: the documents run on with no padding until the very end.
    assert flat[:24] == TOK.encode("abcdefghij") + TOK.encode("klmnopqrst")
