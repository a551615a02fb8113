import protobuf from 'protobufjs';

/**
 * The part of opentelemetry-proto (v1: collector/trace, trace, common, resource) a trace export
 * request needs, with the upstream field numbers. No package in node_modules ships the .proto
 * files (otlp-transformer 0.223 writes requests by hand and reads only responses), so the schema
 * is here and protobufjs does the decoding.
 */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope {
  string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4;
}
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12;
  repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15;
  message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
  message Link {
    bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4;
    uint32 dropped_attributes_count = 5; fixed32 flags = 6;
  }
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

let requestType: protobuf.Type | undefined;

/**
 * Decodes an OTLP/protobuf `ExportTraceServiceRequest` into the shape of its OTLP/JSON mapping
 * (camelCase fields, 64-bit numbers as strings, ids as base64), which the JSON path flattens.
 */
export function decodeOtlpTraceProtobuf(body: Uint8Array): unknown {
  requestType ??= protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('ExportTraceServiceRequest');
  return requestType.toObject(requestType.decode(body), { longs: String, bytes: String, defaults: false });
}
