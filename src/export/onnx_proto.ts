// The part of ONNX's onnx.proto (proto2 syntax, package onnx) that a model of convolutions needs, with the field
// numbers of the ONNX specification, as a protobufjs reflection root: ModelProto and what it holds.
import protobuf from 'protobufjs';

const repeated = 'repeated' as const;
const fields = (f: Record<string, [string, number] | [string, number, 'repeated']>) =>
  Object.fromEntries(Object.entries(f).map(([name, [type, id, rule]]) => [name, rule ? { type, id, rule } : { type, id }]));

export const onnxRoot = protobuf.Root.fromJSON({
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: fields({
            name: ['string', 1],
            f: ['float', 2],
            i: ['int64', 3],
            s: ['bytes', 4],
            floats: ['float', 7, repeated],
            ints: ['int64', 8, repeated],
            type: ['AttributeType', 20],
          }),
          nested: {
            AttributeType: { values: { UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } },
          },
        },
        ValueInfoProto: { fields: fields({ name: ['string', 1], type: ['TypeProto', 2], doc_string: ['string', 3] }) },
        NodeProto: {
          fields: fields({
            input: ['string', 1, repeated],
            output: ['string', 2, repeated],
            name: ['string', 3],
            op_type: ['string', 4],
            attribute: ['AttributeProto', 5, repeated],
            doc_string: ['string', 6],
            domain: ['string', 7],
          }),
        },
        ModelProto: {
          fields: fields({
            ir_version: ['int64', 1],
            producer_name: ['string', 2],
            producer_version: ['string', 3],
            domain: ['string', 4],
            model_version: ['int64', 5],
            doc_string: ['string', 6],
            graph: ['GraphProto', 7],
            opset_import: ['OperatorSetIdProto', 8, repeated],
            metadata_props: ['StringStringEntryProto', 14, repeated],
          }),
        },
        StringStringEntryProto: { fields: fields({ key: ['string', 1], value: ['string', 2] }) },
        GraphProto: {
          fields: fields({
            node: ['NodeProto', 1, repeated],
            name: ['string', 2],
            initializer: ['TensorProto', 5, repeated],
            doc_string: ['string', 10],
            input: ['ValueInfoProto', 11, repeated],
            output: ['ValueInfoProto', 12, repeated],
          }),
        },
        TensorProto: {
          fields: fields({
            dims: ['int64', 1, repeated],
            data_type: ['int32', 2],
            name: ['string', 8],
            raw_data: ['bytes', 9],
            doc_string: ['string', 12],
          }),
          nested: { DataType: { values: { UNDEFINED: 0, FLOAT: 1, INT64: 7 } } },
        },
        TensorShapeProto: {
          fields: fields({ dim: ['Dimension', 1, repeated] }),
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
              fields: fields({ dim_value: ['int64', 1], dim_param: ['string', 2], denotation: ['string', 3] }),
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type'] } },
          fields: fields({ tensor_type: ['Tensor', 1], denotation: ['string', 6] }),
          nested: { Tensor: { fields: fields({ elem_type: ['int32', 1], shape: ['TensorShapeProto', 2] }) } },
        },
        OperatorSetIdProto: { fields: fields({ domain: ['string', 1], version: ['int64', 2] }) },
      },
    },
  },
});

export const ModelProto = onnxRoot.lookupType('onnx.ModelProto');
