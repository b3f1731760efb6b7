"""Storage for paths and URIs: local, ``s3://``, ``gs://`` and read-only ``hf://``.

Nothing assumes a shared file system, so every input and output may be a URI. The rest of
the code uses only these functions (one code path for local and remote), through
pyarrow's file systems and huggingface_hub's ``HfFileSystem``:

- :mod:`.uri`: parse, join and split paths and URIs without mangling ``s3://``;
- :mod:`.filesystems`: exists / list / read / write / upload / delete;
- :mod:`.ranges`: many byte ranges of one object, coalesced, concurrent and retried;
- :mod:`.cache`: node-local copies of small inputs, downloaded once per node;
- :mod:`.errors`: one clear error (URI + fix) for missing, forbidden or unreachable storage.
"""

from modeling.storage.backends import filesystem
from modeling.storage.cache import cache_root, cached_local_copy, cached_local_dir
from modeling.storage.errors import (
    RemoteNotFoundError,
    RemotePermissionError,
    RemoteUnreachableError,
    StorageError,
    TransientStorageError,
    is_transient,
    translate,
)
from modeling.storage.filesystems import (
    delete_tree,
    download,
    exists,
    file_info,
    is_dir,
    list_dir,
    list_files,
    open_input,
    open_input_stream,
    open_output,
    read_bytes,
    read_text,
    size,
    storage_errors,
    upload_dir,
    walk_files,
    write_bytes,
    write_text,
)
from modeling.storage.ranges import RangeReader, coalesce, read_ranges, with_retries
from modeling.storage.uri import StorageUri, is_remote, join, name, parent, parse

__all__ = [
    "RangeReader",
    "RemoteNotFoundError",
    "RemotePermissionError",
    "RemoteUnreachableError",
    "StorageError",
    "StorageUri",
    "TransientStorageError",
    "cache_root",
    "cached_local_copy",
    "cached_local_dir",
    "coalesce",
    "delete_tree",
    "download",
    "exists",
    "file_info",
    "filesystem",
    "is_dir",
    "is_remote",
    "is_transient",
    "join",
    "list_dir",
    "list_files",
    "name",
    "open_input",
    "open_input_stream",
    "open_output",
    "parent",
    "parse",
    "read_bytes",
    "read_ranges",
    "read_text",
    "size",
    "storage_errors",
    "translate",
    "upload_dir",
    "walk_files",
    "with_retries",
    "write_bytes",
    "write_text",
]
