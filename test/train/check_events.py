"""An independent reader of TensorBoard event files: TFRecord framing and both masked CRC32Cs checked byte by
byte (CRC32C from its table here), each record parsed as a tensorflow Event with python3-protobuf from a
descriptor built here (event.proto and summary.proto's field numbers). Prints the scalars, histograms and images
as JSON lines: {"step", "tag", "value"} / {"step", "tag", "bucket"} / {"step", "tag", "png_bytes"}."""
import json
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

POLY = 0x82F63B78  # CRC32C (Castagnoli), reflected
TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def messages():
    f = descriptor_pb2.FileDescriptorProto(name="tb_check.proto", package="tbcheck", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def add(msg, name, number, kind, label=T.LABEL_OPTIONAL, type_name=None):
        fd = msg.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            fd.type_name = type_name

    hist = f.message_type.add(name="HistogramProto")
    for i, n in enumerate(["min", "max", "num", "sum", "sum_squares"], 1):
        add(hist, n, i, T.TYPE_DOUBLE)
    add(hist, "bucket_limit", 6, T.TYPE_DOUBLE, T.LABEL_REPEATED)
    add(hist, "bucket", 7, T.TYPE_DOUBLE, T.LABEL_REPEATED)
    summary = f.message_type.add(name="Summary")
    image = summary.nested_type.add(name="Image")
    add(image, "height", 1, T.TYPE_INT32)
    add(image, "width", 2, T.TYPE_INT32)
    add(image, "colorspace", 3, T.TYPE_INT32)
    add(image, "encoded_image_string", 4, T.TYPE_BYTES)
    value = summary.nested_type.add(name="Value")
    add(value, "tag", 1, T.TYPE_STRING)
    add(value, "simple_value", 2, T.TYPE_FLOAT)
    add(value, "image", 4, T.TYPE_MESSAGE, type_name=".tbcheck.Summary.Image")
    add(value, "histo", 5, T.TYPE_MESSAGE, type_name=".tbcheck.HistogramProto")
    add(summary, "value", 1, T.TYPE_MESSAGE, T.LABEL_REPEATED, ".tbcheck.Summary.Value")
    event = f.message_type.add(name="Event")
    add(event, "wall_time", 1, T.TYPE_DOUBLE)
    add(event, "step", 2, T.TYPE_INT64)
    add(event, "file_version", 3, T.TYPE_STRING)
    add(event, "summary", 5, T.TYPE_MESSAGE, type_name=".tbcheck.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tbcheck.Event"))


def main(path):
    Event = messages()
    buf = open(path, "rb").read()
    off = 0
    first = True
    while off < len(buf):
        header = buf[off:off + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", buf[off + 8:off + 12])
        assert crc == masked(header), f"length CRC at {off}"
        data = buf[off + 12:off + 12 + length]
        assert len(data) == length, f"record cut at {off}"
        (crc,) = struct.unpack("<I", buf[off + 12 + length:off + 16 + length])
        assert crc == masked(data), f"data CRC at {off}"
        e = Event()
        e.ParseFromString(data)
        if first:
            assert e.file_version == "brain.Event:2", e.file_version
            first = False
        for v in e.summary.value:
            if v.HasField("histo"):
                print(json.dumps({"step": e.step, "tag": v.tag, "bucket": list(v.histo.bucket)}))
            elif v.HasField("image"):
                assert v.image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
                print(json.dumps({"step": e.step, "tag": v.tag, "png_bytes": len(v.image.encoded_image_string), "height": v.image.height}))
            else:
                print(json.dumps({"step": e.step, "tag": v.tag, "value": v.simple_value}))
        off += 16 + length


if __name__ == "__main__":
    main(sys.argv[1])
