export * from './tensor.ts';
export * from './shape.ts';
export * from './dtype.ts';
export { grad, unbroadcast, allPrimitives, topologicalOrder } from './grad.ts';
export { exportOnnx, OPSET, type OnnxGraph } from './onnx.ts';
