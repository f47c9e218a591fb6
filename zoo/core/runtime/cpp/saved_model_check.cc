// Loads a SavedModel with TensorFlow's C++ loader (tensorflow::LoadSavedModel, what TF Serving links) and runs
// signatures on tensors given as files: no Python runs. Built and driven by zoo/core/runtime/cpp_loader.py.
//
//   saved_model_check [--op-library LIB.so]... SAVED_MODEL_DIR REQUEST_DIR
//
// --op-library loads a custom op library first (its ops and kernels register when it is opened), as a
// TF Serving build links e.g. TensorFlow Text's ops.
//
// REQUEST_DIR/request.txt, one item per line:
//   signature NAME
//   input NAME DTYPE RANK DIM... FILE        (DTYPE: float32 float64 int32 int64 bool string)
//   run
// Numbers are raw little-endian arrays; a string tensor is each element as a uint32 length and its bytes.
// The outputs of each run are written as REQUEST_DIR/NAME.OUTPUT.bin and listed in REQUEST_DIR/response.txt
// as "output SIGNATURE NAME DTYPE RANK DIM... FILE". A failure prints "error: ..." and exits 1.
#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"

namespace {

int Fail(const std::string& message) {
  std::cout << "error: " << message << std::endl;
  return 1;
}

bool DtypeOf(const std::string& name, tensorflow::DataType* dtype) {
  static const std::map<std::string, tensorflow::DataType> kTypes = {
      {"float32", tensorflow::DT_FLOAT}, {"float64", tensorflow::DT_DOUBLE}, {"int32", tensorflow::DT_INT32},
      {"int64", tensorflow::DT_INT64},   {"bool", tensorflow::DT_BOOL},      {"string", tensorflow::DT_STRING}};
  auto found = kTypes.find(name);
  if (found == kTypes.end()) return false;
  *dtype = found->second;
  return true;
}

std::string NameOf(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT: return "float32";
    case tensorflow::DT_DOUBLE: return "float64";
    case tensorflow::DT_INT32: return "int32";
    case tensorflow::DT_INT64: return "int64";
    case tensorflow::DT_BOOL: return "bool";
    case tensorflow::DT_STRING: return "string";
    default: return "unsupported";
  }
}

bool ReadTensor(const std::string& path, tensorflow::Tensor* tensor) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (tensor->dtype() == tensorflow::DT_STRING) {
    auto flat = tensor->flat<tensorflow::tstring>();
    size_t offset = 0;
    for (int64_t i = 0; i < flat.size(); ++i) {
      uint32_t length;
      if (offset + 4 > bytes.size()) return false;
      std::memcpy(&length, bytes.data() + offset, 4);
      offset += 4;
      if (offset + length > bytes.size()) return false;
      flat(i) = std::string(bytes.data() + offset, length);
      offset += length;
    }
    return offset == bytes.size();
  }
  auto data = tensor->tensor_data();
  if (bytes.size() != data.size()) return false;
  std::memcpy(const_cast<char*>(data.data()), bytes.data(), bytes.size());
  return true;
}

void WriteTensor(const std::string& path, const tensorflow::Tensor& tensor) {
  std::ofstream file(path, std::ios::binary);
  if (tensor.dtype() == tensorflow::DT_STRING) {
    auto flat = tensor.flat<tensorflow::tstring>();
    for (int64_t i = 0; i < flat.size(); ++i) {
      uint32_t length = flat(i).size();
      file.write(reinterpret_cast<const char*>(&length), 4);
      file.write(flat(i).data(), length);
    }
    return;
  }
  auto data = tensor.tensor_data();
  file.write(data.data(), data.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--op-library" && i + 1 < argc) {
      if (!dlopen(argv[++i], RTLD_NOW | RTLD_GLOBAL)) return Fail(std::string("cannot open op library: ") + dlerror());
    } else {
      positional.push_back(argv[i]);
    }
  }
  if (positional.size() != 2)
    return Fail("usage: saved_model_check [--op-library LIB.so]... SAVED_MODEL_DIR REQUEST_DIR");
  const std::string model_dir = positional[0], request_dir = positional[1];
  tensorflow::SavedModelBundle bundle;
  tensorflow::SessionOptions session_options;
  tensorflow::RunOptions run_options;
  auto status = tensorflow::LoadSavedModel(session_options, run_options, model_dir, {"serve"}, &bundle);
  if (!status.ok()) return Fail("LoadSavedModel: " + status.ToString());
  const auto& signatures = bundle.meta_graph_def.signature_def();
  std::cout << "loaded " << model_dir << " with " << signatures.size() << " signature defs" << std::endl;

  std::ifstream request(request_dir + "/request.txt");
  if (!request) return Fail("no " + request_dir + "/request.txt");
  std::ofstream response(request_dir + "/response.txt");
  std::string line, signature;
  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  while (std::getline(request, line)) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "signature") {
      words >> signature;
      feeds.clear();
      if (!signatures.count(signature)) return Fail("the SavedModel has no signature " + signature);
    } else if (kind == "input") {
      std::string name, dtype_name, file;
      int rank;
      words >> name >> dtype_name >> rank;
      tensorflow::TensorShape shape;
      for (int i = 0; i < rank; ++i) {
        int64_t dim;
        words >> dim;
        shape.AddDim(dim);
      }
      words >> file;
      tensorflow::DataType dtype;
      if (!DtypeOf(dtype_name, &dtype)) return Fail("unsupported dtype " + dtype_name);
      const auto& inputs = signatures.at(signature).inputs();
      auto input = inputs.find(name);
      if (input == inputs.end()) return Fail(signature + " has no input " + name);
      if (input->second.dtype() != dtype) {
        return Fail(signature + " input " + name + " is " + NameOf(input->second.dtype()) + ", not " + dtype_name);
      }
      tensorflow::Tensor tensor(dtype, shape);
      if (!ReadTensor(request_dir + "/" + file, &tensor)) return Fail("cannot read " + file + " as " + name);
      feeds.emplace_back(input->second.name(), tensor);
    } else if (kind == "run") {
      const auto& outputs = signatures.at(signature).outputs();
      std::vector<std::string> names, tensor_names;
      for (const auto& output : outputs) {
        names.push_back(output.first);
        tensor_names.push_back(output.second.name());
      }
      std::vector<tensorflow::Tensor> results;
      status = bundle.session->Run(feeds, tensor_names, {}, &results);
      if (!status.ok()) return Fail(signature + ": " + status.ToString());
      for (size_t i = 0; i < results.size(); ++i) {
        const std::string file = signature + "." + names[i] + ".bin";
        WriteTensor(request_dir + "/" + file, results[i]);
        response << "output " << signature << " " << names[i] << " " << NameOf(results[i].dtype()) << " "
                 << results[i].dims();
        for (int d = 0; d < results[i].dims(); ++d) response << " " << results[i].dim_size(d);
        response << " " << file << "\n";
      }
      std::cout << "ran " << signature << std::endl;
    }
  }
  return 0;
}
