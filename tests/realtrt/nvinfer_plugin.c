/* Stub libnvinfer_plugin.so.N (see nvinfer.c): no plugins registered. */
int initLibNvInferPlugins(void *logger, const char *namespace_) { (void)logger; (void)namespace_; return 0; }
