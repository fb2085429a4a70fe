/**
 * The wire protocol between tiers (the contract; docs/protocol.md has the byte layout).
 *
 * ```ts
 * const server = await FrameServer.listen({ port: 0, token, onRequest: async (req) => ({ tensors: run(req.tensors) }) });
 * const conn = await Connection.connect({ port: server.address.port, token });
 * const { tensors } = await conn.request([{ name: 'x', dtype: 'float32', dims: [1, 3], data: new Float32Array(3) }]);
 * await conn.close(); await server.close();
 * ```
 */
export {
  PROTOCOL_VERSION, HEADER_BYTES, DEFAULT_MAX_FRAME_BYTES, HANDSHAKE_MAX_FRAME_BYTES, ALIGN, DTYPE_NAMES, FrameType,
  FrameDecoder, encodeFrame, parseFrame, dtypeCode, elementCount,
  type WireDType, type WireDataMap, type WireTypedArray, type WireTensor, type Meta, type Frame, type FrameTypeName, type DecoderOptions,
} from './frames.js';
export {
  Connection, FrameServer,
  type ConnectOptions, type RequestOptions, type Reply, type Response, type ConnectionStats, type PeerInfo,
  type IncomingRequest, type RequestHandler, type ControlHandler, type ServerOptions,
} from './conn.js';
