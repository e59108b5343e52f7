// The opcode table of the pickle interpreter (unpickler.h), one function per family of
// opcodes so that each stays short; names follow Python's pickletools.
#include "pickle_globals.h"
#include "unpickler.h"

namespace rla::io::detail {

/// Protocol, framing, None, booleans, integers and floats.
bool Unpickler::step_number(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      const auto v = read_le(1);
      if (v > 5) fail(fmt::format("unsupported pickle protocol {}", v));
      break;
    }
    case 0x95:  // FRAME: a length hint only
      take(8);
      break;
    case 'N':
      push(PyValue());
      break;
    case 0x88:
      push(PyValue::boolean(true));
      break;
    case 0x89:
      push(PyValue::boolean(false));
      break;
    case 'J':  // BININT
      push(PyValue::integer(static_cast<int32_t>(read_le(4))));
      break;
    case 'K':  // BININT1
      push(PyValue::integer(static_cast<int64_t>(read_le(1))));
      break;
    case 'M':  // BININT2
      push(PyValue::integer(static_cast<int64_t>(read_le(2))));
      break;
    case 0x8a:  // LONG1
      push(decode_long(read_le(1)));
      break;
    case 0x8b:  // LONG4
      push(decode_long(read_le(4)));
      break;
    case 'I':
      push(text_int(false));
      break;
    case 'L':
      push(text_int(true));
      break;
    case 'G': {  // BINFLOAT: big-endian IEEE double
      const uint8_t* b = take(8);
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
      double d = 0;
      std::memcpy(&d, &bits, sizeof(d));
      push(PyValue::floating(d));
      break;
    }
    default:
      return false;
  }
  return true;
}

/// Text and bytes.
bool Unpickler::step_string(uint8_t op) {
  switch (op) {
    case 'X':  // BINUNICODE
      push(PyValue::string(read_str(read_le(4))));
      break;
    case 0x8c:  // SHORT_BINUNICODE
      push(PyValue::string(read_str(read_le(1))));
      break;
    case 0x8d:  // BINUNICODE8
      push(PyValue::string(read_str(read_le(8))));
      break;
    case 'T': {  // BINSTRING (Python 2 str)
      const auto n = static_cast<int32_t>(read_le(4));
      if (n < 0) fail("negative string length");
      push(PyValue::string(read_str(static_cast<uint64_t>(n))));
      break;
    }
    case 'U':  // SHORT_BINSTRING
      push(PyValue::string(read_str(read_le(1))));
      break;
    case 'B':  // BINBYTES
      push(PyValue::bytes(read_str(read_le(4))));
      break;
    case 'C':  // SHORT_BINBYTES
      push(PyValue::bytes(read_str(read_le(1))));
      break;
    case 0x8e:  // BINBYTES8
      push(PyValue::bytes(read_str(read_le(8))));
      break;
    default:
      return false;
  }
  return true;
}

/// Tuples, lists and dicts.
bool Unpickler::step_container(uint8_t op) {
  switch (op) {
    case ')':
      push(track(PyValue::tuple({})));
      break;
    case 't':
      push(track(PyValue::tuple(pop_mark())));
      break;
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      const size_t n = op - 0x84;
      if (stack_.size() < floor() + n) fail("stack underflow");
      std::vector<PyValue> items(std::make_move_iterator(stack_.end() - n),
                                 std::make_move_iterator(stack_.end()));
      stack_.resize(stack_.size() - n);
      push(track(PyValue::tuple(std::move(items))));
      break;
    }
    case ']':
      push(track(PyValue::list({})));
      break;
    case 'l':
      push(track(PyValue::list(pop_mark())));
      break;
    case 'a': {  // APPEND
      PyValue v = pop();
      top_of(PyValue::Kind::kList, "APPEND").mutable_items().push_back(std::move(v));
      break;
    }
    case 'e': {  // APPENDS
      auto items = pop_mark();
      auto& l = top_of(PyValue::Kind::kList, "APPENDS").mutable_items();
      for (auto& v : items) l.push_back(std::move(v));
      break;
    }
    case '}':
      push(track(PyValue::dict()));
      break;
    case 'd': {  // DICT
      auto items = pop_mark();
      push(track(PyValue::dict()));
      set_items(std::move(items));
      break;
    }
    case 's': {  // SETITEM
      PyValue v = pop();
      PyValue k = pop();
      top_of(PyValue::Kind::kDict, "SETITEM").mutable_dict().set(k, std::move(v));
      break;
    }
    case 'u':
      set_items(pop_mark());
      break;
    default:
      return false;
  }
  return true;
}

/// Stack marks, globals, REDUCE / BUILD, storages and the memo.
bool Unpickler::step_reference(uint8_t op) {
  switch (op) {
    case '(':  // MARK
      marks_.push_back(stack_.size());
      break;
    case '0':  // POP
      if (stack_.size() > floor())
        pop();
      else
        pop_mark();
      break;
    case '1':  // POP_MARK
      pop_mark();
      break;
    case '2':  // DUP
      push(top());
      break;
    case 'c': {  // GLOBAL
      const auto module = read_line();
      const auto name = read_line();
      global(module, name);
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      const PyValue name = pop();
      const PyValue module = pop();
      if (!name.is_string() || !module.is_string()) fail("STACK_GLOBAL needs two strings");
      global(module.to_string(), name.to_string());
      break;
    }
    case 'R': {  // REDUCE
      PyValue args = pop();
      PyValue fn = pop();
      if (fn.kind() != PyValue::Kind::kGlobal) fail("REDUCE on a " + fn.type_name());
      try {
        push(track(detail::call_global(fn.to_string(), args)));
      } catch (const std::runtime_error& e) {
        fail(e.what());
      }
      break;
    }
    case 'b':
      build();
      break;
    case 'Q':
      persistent_load();
      break;
    case 'q':
      memo_put(static_cast<uint32_t>(read_le(1)));
      break;
    case 'r':
      memo_put(static_cast<uint32_t>(read_le(4)));
      break;
    case 'p':
      memo_put(read_decimal_line());
      break;
    case 0x94:  // MEMOIZE
      memo_put(static_cast<uint32_t>(memo_.size()));
      break;
    case 'h':
      memo_get(static_cast<uint32_t>(read_le(1)));
      break;
    case 'j':
      memo_get(static_cast<uint32_t>(read_le(4)));
      break;
    case 'g':
      memo_get(read_decimal_line());
      break;
    default:
      return false;
  }
  return true;
}

void Unpickler::step(uint8_t op) {
  if (step_number(op) || step_string(op) || step_container(op) || step_reference(op)) return;
  switch (op) {
    case 0x81:
    case 0x92:
    case 'i':
    case 'o':
      fail(fmt::format("opcode 0x{:02x} creates an arbitrary object; refused", op));
    case 0x8f:
    case 0x90:
    case 0x91:
      fail("sets are not supported in checkpoints");
    default:
      fail(fmt::format("unsupported pickle opcode 0x{:02x}", op));
  }
}

}  // namespace rla::io::detail
