/* Stub libnvinfer.so.N for NVIDIA's real TensorRT Python bindings (tensorrt.so) without a GPU.
 * It exports the entry points `nm -D --undefined-only tensorrt.so` lists for libnvinfer (8.6.1, 10.3.0,
 * 10.13.x, 11.x); each returns NULL, so trt.Builder(logger) / trt.Runtime(logger) raise
 * "TypeError: pybind11::init(): factory function returned nullptr", as they do when CUDA cannot start.
 * Built by .ci/real_tensorrt.sh; never linked into anything but the tests. */
#include <stddef.h>

void *createInferBuilder_INTERNAL(void *logger, int version) { (void)logger; (void)version; return NULL; }
void *createInferRuntime_INTERNAL(void *logger, int version) { (void)logger; (void)version; return NULL; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version)
{
    (void)engine; (void)logger; (void)version;
    return NULL;
}
void *getPluginRegistry(void) { return NULL; }
void *getBuilderPluginRegistry(int capability) { (void)capability; return NULL; }
