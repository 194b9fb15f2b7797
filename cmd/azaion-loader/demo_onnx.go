package main

import (
	"encoding/binary"
	"math"
)

// demoONNXName is the small real model `demo` uploads beside the random
// one, for examples/open_model.py to load with onnx.
const demoONNXName = "tiny-classifier.onnx"

// demoONNX is a small real ONNX model (IR 8, opset 13), encoded here as
// protobuf by hand so that the demo needs no generator outside Go and no
// binary in the repository: a linear classifier, scores = Softmax(features
// × W + b), features float[N,4], scores float[N,3]. onnx.checker accepts
// it (the examples test loads it with Debian's python3-onnx).
func demoONNX() []byte {
	w := make([]float32, 4*3)
	for i := range w {
		w[i] = float32(i%5)/4 - 0.5
	}
	b := []float32{0.1, 0, -0.1}
	graph := pbCat(
		onnxNode("MatMul", "features", "W", "logits_raw"),
		onnxNode("Add", "logits_raw", "b", "logits"),
		onnxNode("Softmax", "logits", "", "scores"),
		pbBytes(2, []byte("tiny_classifier")),
		pbBytes(5, onnxTensor("W", []int64{4, 3}, w)),
		pbBytes(5, onnxTensor("b", []int64{3}, b)),
		pbBytes(11, onnxValueInfo("features", "N", 4)),
		pbBytes(12, onnxValueInfo("scores", "N", 3)),
	)
	return pbCat(
		pbVarint(1, 8),                           // ir_version
		pbBytes(2, []byte("azaion-loader demo")), // producer_name
		pbBytes(7, graph),
		pbBytes(8, pbCat(pbBytes(1, nil), pbVarint(2, 13))), // opset_import: ai.onnx 13
	)
}

// onnxNode is a GraphProto.node: op with its inputs (b may be "") and output.
func onnxNode(op, a, b, out string) []byte {
	n := pbBytes(1, []byte(a))
	if b != "" {
		n = pbCat(n, pbBytes(1, []byte(b)))
	}
	return pbBytes(1, pbCat(n, pbBytes(2, []byte(out)), pbBytes(3, []byte(op+"_"+out)), pbBytes(4, []byte(op))))
}

// onnxTensor is a float TensorProto with its data as raw little-endian bytes.
func onnxTensor(name string, dims []int64, v []float32) []byte {
	var t []byte
	for _, d := range dims {
		t = pbCat(t, pbVarint(1, uint64(d)))
	}
	raw := make([]byte, 0, 4*len(v))
	for _, f := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
	}
	return pbCat(t, pbVarint(2, 1 /* FLOAT */), pbBytes(8, []byte(name)), pbBytes(9, raw))
}

// onnxValueInfo is a ValueInfoProto of a float tensor [batch, n].
func onnxValueInfo(name, batch string, n int64) []byte {
	shape := pbCat(pbBytes(1, pbBytes(2, []byte(batch))), pbBytes(1, pbVarint(1, uint64(n))))
	tensorType := pbCat(pbVarint(1, 1 /* FLOAT */), pbBytes(2, shape))
	return pbCat(pbBytes(1, []byte(name)), pbBytes(2, pbBytes(1, tensorType)))
}

// pbVarint and pbBytes are protobuf fields of wire types 0 and 2.
func pbVarint(field int, v uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, uint64(field)<<3), v)
}

func pbBytes(field int, b []byte) []byte {
	out := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(field)<<3|2), uint64(len(b)))
	return append(out, b...)
}

func pbCat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
