/* Stub libnvparsers.so.8 (TensorRT 8.x only; see nvinfer.c): the Caffe and UFF parsers of 8.6's bindings.
 * C++ entry points, so they carry the mangled names `nm -D --undefined-only tensorrt.so` shows:
 *   nvcaffeparser1::createCaffeParser(), nvcaffeparser1::shutdownProtobufLibrary(),
 *   nvuffparser::createUffParser(), nvuffparser::FieldMap::FieldMap(char const*, void const*, FieldType, int) */
#include <stddef.h>

void *_ZN14nvcaffeparser117createCaffeParserEv(void) { return NULL; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) {}
void *_ZN11nvuffparser15createUffParserEv(void) { return NULL; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void *self, const char *name, const void *data, int type,
                                                       int length)
{
    /* FieldMap is {const char* name; const void* data; FieldType type; int32_t length;} (NvUffParser.h) */
    struct FieldMap { const char *name; const void *data; int type; int length; } *f = self;
    f->name = name; f->data = data; f->type = type; f->length = length;
}
