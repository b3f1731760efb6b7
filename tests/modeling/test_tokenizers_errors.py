"""Every bad input a user can give the tokenizers gets a clear error."""

import pytest

from modeling.data import Message
from modeling.gemma import gemma_tokenizer
from modeling.llama2 import llama2_tokenizer
from modeling.llama3 import llama3_tokenizer
from modeling.mistral import mistral_tokenizer
from modeling.phi3 import phi3_mini_tokenizer
from tests.modeling.tokenizer_fixtures import (
    rank_file_lines,
    sentencepiece_model,
    write_sentencepiece,
    write_tiktoken_ranks,
)

BUILDERS = [
    llama3_tokenizer,
    llama2_tokenizer,
    mistral_tokenizer,
    phi3_mini_tokenizer,
    gemma_tokenizer,
]
SENTENCEPIECE_BUILDERS = BUILDERS[1:]


def working_file(build, directory):
    if build is llama3_tokenizer:
        return write_tiktoken_ranks(directory)
    return write_sentencepiece(directory, gemma=build is gemma_tokenizer)


@pytest.mark.parametrize("build", BUILDERS)
def test_missing_file(tmp_path, build):
    path = tmp_path / "nowhere" / "tokenizer.model"
    with pytest.raises(FileNotFoundError, match=rf"{build.__name__}: .*{path}.* does not exist"):
        build(path)


@pytest.mark.parametrize("build", BUILDERS)
def test_directory_instead_of_file(tmp_path, build):
    with pytest.raises(FileNotFoundError, match="is a directory; pass the path of the tokenizer"):
        build(tmp_path)


@pytest.mark.parametrize("build", BUILDERS)
def test_empty_file(tmp_path, build):
    path = tmp_path / "tokenizer.model"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty; download it again"):
        build(path)


@pytest.mark.parametrize("build", BUILDERS)
def test_checkpoint_instead_of_tokenizer(tmp_path, build):
    path = tmp_path / "consolidated.00.pth"
    with path.open("wb") as sparse:
        sparse.truncate(3 * 2**30)
    with pytest.raises(ValueError, match="is 3.0 GiB, too big for a tokenizer file"):
        build(path)


def test_sentencepiece_model_given_to_llama3(tmp_path):
    with pytest.raises(ValueError) as error:
        llama3_tokenizer(write_sentencepiece(tmp_path))
    message = str(error.value)
    assert "is not a tiktoken BPE rank file: it looks like a sentencepiece model" in message
    assert "llama2_tokenizer" in message and "gemma_tokenizer" in message


@pytest.mark.parametrize("build", SENTENCEPIECE_BUILDERS)
def test_tiktoken_ranks_given_to_sentencepiece_tokenizer(tmp_path, build):
    with pytest.raises(
        ValueError,
        match=(
            rf"{build.__name__}: .* is not a sentencepiece model: it looks like a tiktoken BPE "
            r"rank file, Llama 3's tokenizer format: read Llama 3 files with llama3_tokenizer"
        ),
    ):
        build(write_tiktoken_ranks(tmp_path))


@pytest.mark.parametrize("build", BUILDERS)
def test_tokenizer_json_and_garbage(tmp_path, build):
    json_path = tmp_path / "tokenizer.json"
    json_path.write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    with pytest.raises(ValueError, match="it looks like a Hugging Face tokenizer.json"):
        build(json_path)
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(bytes(range(256)) * 4)
    expected = "first line is not" if build is llama3_tokenizer else "does not parse as one"
    with pytest.raises(ValueError, match=expected):
        build(garbage)


def test_damaged_rank_file(tmp_path):
    lines = rank_file_lines()
    damaged = tmp_path / "damaged.model"
    damaged.write_text("\n".join([*lines[:2], "!!not-base64 2", *lines[3:]]))
    with pytest.raises(ValueError, match="line 3 of .* is not '<base64 token> <rank>'"):
        llama3_tokenizer(damaged)
    gap = tmp_path / "gap.model"
    gap.write_text("\n".join([*lines[:-1], lines[-1].split()[0] + " 100000"]))
    with pytest.raises(ValueError, match="are not 0..* with each token once"):
        llama3_tokenizer(gap)


def test_gemma_needs_its_turn_pieces(tmp_path):
    with pytest.raises(ValueError, match="has no '<start_of_turn>' piece.* not a Gemma tokenizer"):
        gemma_tokenizer(write_sentencepiece(tmp_path))


def test_phi3_rejects_a_model_whose_pieces_reach_its_added_ids(tmp_path):
    model_pb2 = pytest.importorskip("sentencepiece.sentencepiece_model_pb2")
    model = model_pb2.ModelProto()
    model.ParseFromString(sentencepiece_model())
    for index in range(32_001 - len(model.pieces)):
        piece = model.pieces.add()
        piece.piece, piece.score = f"extra{index}", -1000.0 - index
    path = tmp_path / "big.model"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match="has 32001 pieces.* not a Phi-3 tokenizer model"):
        phi3_mini_tokenizer(path)


@pytest.mark.parametrize("build", BUILDERS)
def test_bad_messages(tmp_path, build):
    tok = build(working_file(build, tmp_path))
    with pytest.raises(ValueError, match="Unknown message role 'tool'"):
        tok.tokenize_messages([{"role": "tool", "content": "x"}])
    with pytest.raises(ValueError, match="missing \\['content'\\]"):
        tok.tokenize_messages([{"role": "user"}])
    with pytest.raises(ValueError, match="got no messages"):
        tok.tokenize_messages([])
    with pytest.raises(ValueError, match="max_seq_len must be a positive number"):
        build(working_file(build, tmp_path), max_seq_len=0)
    with pytest.raises(ValueError, match="Cannot decode ids \\[-1\\]"):
        tok.decode([-1])


@pytest.mark.parametrize("build", [llama2_tokenizer, mistral_tokenizer, gemma_tokenizer])
def test_turn_order_the_format_cannot_express(tmp_path, build):
    tok = build(working_file(build, tmp_path))
    user, reply, system = Message("user", "a"), Message("assistant", "b"), Message("system", "c")
    with pytest.raises(ValueError, match="system message only as the first message; message 2"):
        tok.tokenize_messages([user, reply, system])
    with pytest.raises(ValueError, match="a user message must follow it"):
        tok.tokenize_messages([system, reply])
    with pytest.raises(ValueError, match="turn 1 .* is 'user' where 'assistant' belongs"):
        tok.tokenize_messages([user, user])
    with pytest.raises(ValueError, match="turn 0 .* is 'assistant' where 'user' belongs"):
        tok.tokenize_messages([reply])
    with pytest.raises(ValueError, match="is 'ipython' where 'assistant' belongs"):
        tok.tokenize_messages([user, Message("ipython", "42")])
